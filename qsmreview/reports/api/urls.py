from django.urls import path

import qsmreview.api.ids  # noqa: F401  (registers the <id:...> path converter)

from qsmreview.reports.api import views

urlpatterns = [
    path("studies/<id:pk>/statistics/", views.StudyStatisticsApi.as_view(), name="api-study-statistics"),
    path("studies/<id:pk>/statistics/csv/", views.StudyStatisticsCsvApi.as_view(), name="api-study-statistics-csv"),
    path("studies/<id:pk>/lesion-table/", views.StudyLesionTableApi.as_view(), name="api-study-lesion-table"),
    path("studies/<id:pk>/lesion-table/csv/", views.StudyLesionTableCsvApi.as_view(),
         name="api-study-lesion-table-csv"),
    path("studies/<id:pk>/patient-table/", views.StudyPatientTableApi.as_view(), name="api-study-patient-table"),
    path("studies/<id:pk>/patient-table/csv/", views.StudyPatientTableCsvApi.as_view(),
         name="api-study-patient-table-csv"),
    path("studies/<id:pk>/lesion-tables/", views.StudyImportedTablesApi.as_view(), name="api-study-lesion-tables"),
]
