"""Studies, members, subjects, sessions and series in Django's admin.

Access: superusers see everything; other staff see and edit only the studies they administer
(:func:`~qsmreview.access.studies_managed_by`), and every list, filter and choice list is limited
to those studies. Staff may create studies (becoming their admin).

Every write goes through the services, which check the acting user: the forms call the service
in ``clean`` (:class:`ServiceForm`), so the service's messages appear on the form and a refused
change stores nothing. The Series "add" page is the web upload: its form hands the uploaded
temporary file to :func:`~qsmreview.studies.services.series.series_create_from_file`. Stored
series are immutable: their pages are read-only; blinding and which version is current change
through the list's actions.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

from qsmreview.access import can_create_study, studies_managed_by
from qsmreview.errors import DomainError
from qsmreview.studies.models import Membership, Series, SeriesKind, Session, Space, Study, Subject
from qsmreview.studies.services.series import series_create_from_file, series_set_current
from qsmreview.studies.services.studies import (
    SESSION_FIELDS,
    STUDY_FIELDS,
    SUBJECT_FIELDS,
    membership_is_last_admin,
    membership_remove,
    membership_set,
    series_update,
    session_create,
    session_update,
    study_create,
    study_delete,
    study_update,
    subject_create,
    subject_update,
)
from qsmreview.studies.uploads import UploadTooLarge, too_large_response, uploaded_file_path


def _is_super(request: HttpRequest) -> bool:
    return bool(request.user.is_active and request.user.is_superuser)


def scoped_filter(path: str) -> tuple[str, type[admin.RelatedOnlyFieldListFilter]]:
    """A list filter on a related object that offers only the values in the admin's own rows.

    Django's default related filter lists every object of the related model (every study name in
    the database); this one lists those of the rows the user may see.
    """
    return (path, admin.RelatedOnlyFieldListFilter)


class ServiceForm(forms.ModelForm):
    """A model form that writes through a service, called from ``clean``.

    Subclasses implement :meth:`store` (create or update through a service, with ``self.user`` as
    the acting user). A service's refusal becomes a form error; on success the stored object
    replaces ``self.instance`` and the admin's ``save_form`` returns it.
    """

    #: set by :meth:`ServiceAdmin.get_form`: the acting user
    user: Any = None

    def store(self, data: dict[str, Any]) -> Model:
        raise NotImplementedError

    def changes(self, data: dict[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
        return {name: data[name] for name in self.changed_data if name in allowed and name in data}

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        try:
            with transaction.atomic():
                self.instance = self.store(data)
        except DomainError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return data


class StudyScopedAdmin(admin.ModelAdmin):
    """Staff who are not superusers reach only objects of the studies they administer.

    ``study_path`` is the lookup from the model to its study ("" for Study itself).
    """

    study_path: str = ""

    def _study_of(self, obj: Model) -> Study:
        target: Any = obj
        for part in filter(None, self.study_path.split("__")):
            target = getattr(target, part)
        return target

    def _managed(self, request: HttpRequest) -> QuerySet[Study]:
        return studies_managed_by(request.user)

    def _manages(self, request: HttpRequest, obj: Model | None = None) -> bool:
        if _is_super(request):
            return True
        if not (request.user.is_active and request.user.is_staff):
            return False
        if obj is None:
            return self._managed(request).exists()
        study = self._study_of(obj)
        return study is not None and self._managed(request).filter(pk=study.pk).exists()

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        if _is_super(request):
            return qs
        lookup = f"{self.study_path}__in" if self.study_path else "pk__in"
        return qs.filter(**{lookup: self._managed(request)})

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._manages(request)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._manages(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._manages(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._manages(request)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self._manages(request, obj)

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs: Any):
        if not _is_super(request):
            managed = self._managed(request)
            if db_field.related_model is Study:
                kwargs["queryset"] = managed
            elif db_field.related_model is Subject:
                kwargs["queryset"] = Subject.objects.filter(study__in=managed)
            elif db_field.related_model is Session:
                kwargs["queryset"] = Session.objects.filter(subject__study__in=managed)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ServiceAdmin(StudyScopedAdmin):
    """Saves through the form's service call (:class:`ServiceForm`), never through the ORM."""

    def get_form(self, request: HttpRequest, obj: Model | None = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"user": request.user})

    def save_form(self, request: HttpRequest, form: forms.Form, change: bool) -> Model:
        return form.instance  # stored by the service during validation

    def save_model(self, request: HttpRequest, obj: Model, form: forms.Form, change: bool) -> None:
        pass

    def save_related(self, request: HttpRequest, form: forms.Form, formsets, change: bool) -> None:
        # No many-to-many fields, and inlines are read-only: nothing to write. The change message
        # still reads what each formset saved.
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []


# --- studies ---------------------------------------------------------------------------------


class ReadOnlyInline(admin.TabularInline):
    """Rows shown under their parent, never added, changed or deleted there (writes go through
    the services); seen whenever the parent admin lets its object be seen."""

    extra = 0

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return True


class MembershipInline(ReadOnlyInline):
    """The study's members, read-only: members change on the Memberships page (the service)."""

    model = Membership
    fields = ("user", "role", "created_at")
    readonly_fields = ("user", "role", "created_at")


class StudyForm(ServiceForm):
    class Meta:
        model = Study
        fields = ["name", "description", "field_strength_t", "protocol"]

    def store(self, data: dict[str, Any]) -> Study:
        if self.instance.pk is None:
            return study_create(by=self.user, **{k: data[k] for k in self.Meta.fields if k in data})
        return study_update(study=self.instance, by=self.user, **self.changes(data, STUDY_FIELDS))

    def clean_protocol(self) -> dict:
        from qsmreview.processing.protocol import qsm_parameters

        protocol = self.cleaned_data.get("protocol") or {}
        if not isinstance(protocol, dict):
            raise forms.ValidationError("the protocol must be a JSON object")
        try:
            qsm_parameters(protocol)
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from exc
        return protocol


@admin.register(Study)
class StudyAdmin(ServiceAdmin):
    form = StudyForm
    list_display = ("name", "field_strength_t", "created_by", "created_at")
    search_fields = ("name", "description")
    readonly_fields = ("created_by", "created_at")
    inlines = [MembershipInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return can_create_study(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return _is_super(request)  # deleting a study deletes all its data

    def delete_model(self, request: HttpRequest, obj: Study) -> None:
        study_delete(study=obj, by=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Study]) -> None:
        for study in queryset:
            study_delete(study=study, by=request.user)


class MembershipForm(ServiceForm):
    class Meta:
        model = Membership
        fields = ("study", "user", "role")

    def store(self, data: dict[str, Any]) -> Membership:
        current = self.instance
        study = current.study if current.pk else data["study"]
        user = current.user if current.pk else data["user"]
        membership, _ = membership_set(study=study, by=self.user, user=user, role=data["role"])
        return membership


@admin.register(Membership)
class MembershipAdmin(ServiceAdmin):
    """Members one by one, through the membership service (which keeps the study an admin)."""

    study_path = "study"
    form = MembershipForm
    list_display = ("user", "study", "role", "created_at")
    list_filter = (scoped_filter("study"), "role")
    search_fields = ("user__username",)
    raw_id_fields = ("user",)
    list_select_related = ("study", "user")

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> tuple[str, ...]:
        return ("study", "user") if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        if obj is not None and membership_is_last_admin(obj):
            return False  # the service would refuse: the study keeps an admin
        return super().has_delete_permission(request, obj)

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        membership_remove(study=obj.study, by=request.user, user=obj.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        for membership in queryset.select_related("study", "user"):
            try:
                membership_remove(study=membership.study, by=request.user, user=membership.user)
            except DomainError as exc:
                self.message_user(request, f"{membership}: {exc.message}", messages.WARNING)


class SubjectForm(ServiceForm):
    class Meta:
        model = Subject
        fields = ["study", "code", *sorted(SUBJECT_FIELDS - {"code"})]

    def store(self, data: dict[str, Any]) -> Subject:
        if self.instance.pk is None:
            # An empty optional field (None) keeps the model's default (e.g. extra = {}).
            fields = {k: data[k] for k in SUBJECT_FIELDS - {"code"} if data.get(k) is not None}
            return subject_create(study=data["study"], by=self.user, code=data["code"], **fields)
        return subject_update(subject=self.instance, by=self.user, **self.changes(data, SUBJECT_FIELDS))


@admin.register(Subject)
class SubjectAdmin(ServiceAdmin):
    study_path = "study"
    form = SubjectForm
    list_display = ("code", "study", "sex", "age_years", "phenotype", "disease_duration_years")
    list_filter = (scoped_filter("study"), "phenotype", "sex")
    search_fields = ("code", "notes")
    list_select_related = ("study",)

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> tuple[str, ...]:
        return ("study",) if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # a subject's scans are immutable study data


class SessionForm(ServiceForm):
    class Meta:
        model = Session
        fields = ["subject", "label", *sorted(SESSION_FIELDS - {"label"})]

    def store(self, data: dict[str, Any]) -> Session:
        if self.instance.pk is None:
            fields = {k: data[k] for k in SESSION_FIELDS - {"label"} if data.get(k) is not None}
            return session_create(subject=data["subject"], by=self.user, label=data["label"], **fields)
        return session_update(session=self.instance, by=self.user, **self.changes(data, SESSION_FIELDS))


@admin.register(Session)
class SessionAdmin(ServiceAdmin):
    study_path = "subject__study"
    form = SessionForm
    list_display = ("__str__", "label", "scan_date", "scanner", "field_strength_t")
    list_filter = (scoped_filter("subject__study"),)
    search_fields = ("subject__code", "label", "scanner")
    list_select_related = ("subject__study",)

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> tuple[str, ...]:
        return ("subject",) if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # a session's scans are immutable study data


# --- series: the upload form -----------------------------------------------------------------

_TE_SPLIT = re.compile(r"[,\s;]+")


class SeriesUploadForm(forms.Form):
    """Session, kind, label, echo times, B0, blinding and the file; the service does the rest."""

    session = forms.ModelChoiceField(queryset=Session.objects.none())
    kind = forms.ChoiceField(choices=SeriesKind.choices)
    label = forms.CharField(
        required=False, max_length=64, help_text="distinguishes volumes of one kind, e.g. 'echo-2'"
    )
    space = forms.ChoiceField(
        required=False,
        choices=[("", "Automatic (grid rule)"), *Space.choices],
        help_text="T1/FLAIR on another grid than the T2* magnitude are stored as 'native' for "
        "coregistration",
    )
    echo_times_s = forms.CharField(
        required=False,
        label="Echo times (s)",
        help_text="seconds, one per echo, comma-separated, e.g. 0.004, 0.008 (required for phase)",
    )
    b0_t = forms.FloatField(
        required=False, label="B0 (T)", help_text="default: the session's field strength"
    )
    blinded = forms.TypedChoiceField(
        required=False,
        choices=[("", "Default for the kind (QSM and lesion masks are blinded)"), ("1", "Blinded"), ("0", "Visible to raters")],
        coerce=lambda v: v == "1",
        empty_value=None,
    )
    file = forms.FileField(help_text="a NIfTI-1 or NIfTI-2 volume, .nii or .nii.gz")

    #: set by the admin: the uploading user
    user: Any = None

    def __init__(self, *args: Any, instance: Series | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.instance = instance or Series()
        self.series: Series | None = None
        sessions = Session.objects.select_related("subject__study")
        if self.user is not None and not self.user.is_superuser:
            sessions = sessions.filter(subject__study__in=studies_managed_by(self.user))
        self.fields["session"].queryset = sessions

    def clean_echo_times_s(self) -> list[float] | None:
        raw = (self.cleaned_data.get("echo_times_s") or "").strip().strip("[]")
        if not raw:
            return None
        try:
            return [float(t) for t in _TE_SPLIT.split(raw) if t]
        except ValueError as exc:
            raise forms.ValidationError("echo times must be numbers in seconds, e.g. 0.004, 0.008") from exc

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.errors:
            return data
        upload = data["file"]
        try:
            with uploaded_file_path(upload) as path:
                self.series = series_create_from_file(
                    session=data["session"],
                    kind=data["kind"],
                    path=path,
                    original_filename=upload.name,
                    by=self.user,
                    label=data.get("label") or "",
                    space=data.get("space") or None,
                    echo_times_s=data.get("echo_times_s"),
                    b0_t=data.get("b0_t"),
                    blinded=data.get("blinded"),
                )
        except DomainError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        else:
            self.instance = self.series
        return data


@admin.register(Series)
class SeriesAdmin(StudyScopedAdmin):
    study_path = "session__subject__study"
    list_display = ("id", "session", "kind", "label", "space", "version", "is_current", "blinded", "shape", "created_at")
    list_filter = ("kind", "space", "is_current", "blinded", scoped_filter("session__subject__study"))
    search_fields = ("session__subject__code", "label", "original_filename", "sha256")
    list_select_related = ("session__subject__study",)
    actions = ["make_current", "blind", "unblind"]
    add_fieldsets = (
        (None, {"fields": ("session", "kind", "label", "file")}),
        ("Acquisition", {"fields": ("echo_times_s", "b0_t", "space", "blinded")}),
    )

    # Stored series are immutable: every field of the change page is read-only.
    def get_readonly_fields(self, request: HttpRequest, obj: Series | None = None):
        if obj is None:
            return ()
        return [f.name for f in Series._meta.fields] + ["derived_from"]

    def get_fieldsets(self, request: HttpRequest, obj: Series | None = None):
        if obj is None:
            return self.add_fieldsets
        return super().get_fieldsets(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False if obj is not None else self._manages(request)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # immutable; a replacement is a new version

    def get_form(self, request: HttpRequest, obj: Series | None = None, change: bool = False, **kwargs: Any):
        if obj is not None:
            return super().get_form(request, obj, change=change, **kwargs)
        return type("SeriesUploadFormFor", (SeriesUploadForm,), {"user": request.user})

    def changeform_view(self, request: HttpRequest, object_id=None, form_url: str = "", extra_context=None):
        if request.method == "POST" and object_id is None:
            try:
                request.FILES  # parse the body now: the size limit may refuse it
            except UploadTooLarge as exc:
                return too_large_response(exc)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def response_add(self, request: HttpRequest, obj: Series, post_url_continue: str | None = None):
        response = super().response_add(request, obj, post_url_continue)
        if "_addanother" in request.POST or "_popup" in request.POST:
            return response
        # Show what was stored (shape, voxel size, checksum, provenance).
        return HttpResponseRedirect(reverse("admin:studies_series_change", args=[obj.pk]))

    # The service has already stored the series during the form's validation.
    def save_form(self, request: HttpRequest, form: forms.Form, change: bool) -> Series:
        if change:
            return super().save_form(request, form, change)
        return form.series

    def save_model(self, request: HttpRequest, obj: Series, form: forms.Form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: forms.Form, formsets, change: bool) -> None:
        if change:
            super().save_related(request, form, formsets, change)

    # --- actions ---

    def _each(self, request: HttpRequest, queryset: QuerySet[Series], action, verb: str) -> None:
        done = 0
        for series in queryset:
            try:
                action(series)
                done += 1
            except DomainError as exc:
                self.message_user(request, f"series {series.pk}: {exc.message}", messages.WARNING)
        self.message_user(request, f"{verb} {done} series")

    @admin.action(description="Make the selected versions current")
    def make_current(self, request: HttpRequest, queryset: QuerySet[Series]) -> None:
        self._each(request, queryset, lambda s: series_set_current(series=s, by=request.user), "Made current")

    @admin.action(description="Blind the selected series (hide from raters)")
    def blind(self, request: HttpRequest, queryset: QuerySet[Series]) -> None:
        self._each(request, queryset, lambda s: series_update(series=s, by=request.user, blinded=True), "Blinded")

    @admin.action(description="Unblind the selected series (show to raters)")
    def unblind(self, request: HttpRequest, queryset: QuerySet[Series]) -> None:
        self._each(request, queryset, lambda s: series_update(series=s, by=request.user, blinded=False), "Unblinded")
