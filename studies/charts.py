"""The server-drawn SVG charts now live in `opsplatform.charts` (the customer's campaign page
draws them too); this name stays for the studies admin."""

from opsplatform.charts import COLOURS, line_chart

__all__ = ["COLOURS", "line_chart"]
