from django.urls import path

from payouts import views

app_name = "payouts"

urlpatterns = [
    path("payouts/notify/<str:rail>/", views.transfer_notification, name="transfer_notification"),
]
