"""aimd.reports — the conformity report (000 §6): model, figures, JSON/HTML/PDF renderers.

* :class:`Report` (header with identity, hashes, versions, seeds, hardware; one section per
  clause; verdict summary) and its exported JSON Schema (:func:`report_schema`);
* :func:`render_figures` (matplotlib), :func:`write_json`, :func:`write_html` (Jinja2),
  :func:`write_pdf` (WeasyPrint, local files only);
* :func:`evaluate_model` (``aimd evaluate``) and :func:`run_evaluation_demo` (``aimd demo``).

Example
-------
>>> from aimd.reports import report_schema
>>> report_schema()["title"]
'Report'
"""

from aimd.core.lazy import lazy_exports

lazy_exports(
    __name__,
    {
        "aimd.reports.figures": ["draw_plot", "render_figures"],
        "aimd.reports.model": [
            "REPORT_FORMAT",
            "Report",
            "ReportHeader",
            "SummaryRow",
            "build_report",
            "report_schema",
        ],
        "aimd.reports.pipeline": ["REFERENCE_CLAIMS", "evaluate_model", "run_evaluation_demo", "write_report"],
        "aimd.reports.render": ["render_html", "write_html", "write_json", "write_pdf"],
    },
)

__all__ = [
    "REFERENCE_CLAIMS",
    "REPORT_FORMAT",
    "Report",
    "ReportHeader",
    "SummaryRow",
    "build_report",
    "draw_plot",
    "evaluate_model",
    "render_figures",
    "render_html",
    "report_schema",
    "run_evaluation_demo",
    "write_html",
    "write_json",
    "write_pdf",
    "write_report",
]
