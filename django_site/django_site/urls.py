from django.contrib import admin
from django.urls import include, path

from demo import views

urlpatterns = [
    path("", views.index, name="index"),
    path("notify-me/", views.notify_me, name="notify-me"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("realtime/", include("realtime.urls")),
]
