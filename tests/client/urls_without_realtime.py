"""A site that has not included realtime.urls."""

urlpatterns = []
