"""A database session engine whose table is missing: a real database error on every load."""

from django.contrib.sessions.backends import db
from django.contrib.sessions.base_session import AbstractBaseSession


class MissingTableSession(AbstractBaseSession):
    class Meta:
        app_label = "sessions"
        db_table = "djwamp_test_no_such_table"
        managed = False


class SessionStore(db.SessionStore):
    @classmethod
    def get_model_class(cls):
        return MissingTableSession
