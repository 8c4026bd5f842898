"""report (`segedge report`): every precision x runtime x provider measured in one run, and the row to ship."""

from segedge.report.rows import Report, ReportRow, choose_best
from segedge.report.run import ReportRequest, report_name, run_report

__all__ = ["Report", "ReportRequest", "ReportRow", "choose_best", "report_name", "run_report"]
