from django.urls import path

from apps.tags import views_rules

app_name = "tag_rules"

urlpatterns = [
    path("", views_rules.rule_list, name="list"),
    path("aliases/add", views_rules.alias_add, name="alias-add"),
    path("implications/add", views_rules.implication_add, name="implication-add"),
    path("<str:kind>/<int:pk>/<str:verb>", views_rules.rule_action, name="action"),
]
