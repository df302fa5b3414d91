from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.core.exceptions import DomainError
from apps.jobs import services
from apps.jobs.models import Job, JobItem


class JobItemInline(admin.TabularInline):
    model = JobItem
    extra = 0
    can_delete = False
    fields = ["seq", "input", "status", "object_id", "error_code", "error_message"]
    readonly_fields = fields  # type: ignore[assignment]
    max_num = 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[JobItem]:
        return super().get_queryset(request).order_by("seq")


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "kind",
        "about",
        "outcome",
        "results",
        "progress_done",
        "progress_total",
        "attempts",
        "created_by",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "kind"]
    search_fields = ["=id", "kind", "error_code"]
    show_full_result_count = False
    readonly_fields = [f.name for f in Job._meta.fields]
    inlines = [JobItemInline]
    actions = ["cancel_jobs", "retry_jobs"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="About")
    def about(self, obj: Job) -> str:
        return str(obj.subject["label"])

    @admin.display(description="Status", ordering="status")
    def outcome(self, obj: Job) -> str:
        return obj.outcome_label

    @admin.display(description="Created / duplicate / failed")
    def results(self, obj: Job) -> str:
        counts = obj.counts
        return f"{counts.get('created', 0)} / {counts.get('duplicate', 0)} / {obj.failures}"

    @admin.action(description="Retry selected failed jobs (from their checkpoint)")
    def retry_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        retried = 0
        for job in queryset:
            try:
                services.job_retry(job=job, actor=request.user)
                retried += 1
            except DomainError as err:
                self.message_user(request, f"Job {job.pk}: {err.message}", messages.WARNING)
        self.message_user(request, f"Retried {retried} jobs.", messages.SUCCESS)

    @admin.action(description="Cancel selected jobs")
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        cancelled = 0
        for job in queryset:
            try:
                services.job_cancel(job=job)
                cancelled += 1
            except DomainError as err:
                self.message_user(request, f"Job {job.pk}: {err.message}", messages.WARNING)
        self.message_user(request, f"Cancelled {cancelled} jobs.", messages.SUCCESS)
