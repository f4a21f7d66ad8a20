from django.contrib import admin
from django.urls import include, path

from demo import views

urlpatterns = [
    path("", views.index, name="index"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("realtime/", include("realtime.urls")),
]
