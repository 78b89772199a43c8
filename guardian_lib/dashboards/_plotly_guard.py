"""A browser-side guard for a race in Panel's (1.9) Plotly view, loaded by the live app.

Panel's Plotly view resizes its chart container (``Plotly.relayout``) whenever one of its
stylesheets finishes loading (``style_redraw``) and after each layout. It does so even
when that container holds no plot: the live app's tabs are dynamic, so opening another
tab removes the previous tab's views and Plotly purges their charts, and a stylesheet
still loading then resizes a purged container (a view rendered again while its first plot
is pending resizes a new, empty one the same way). ``Plotly.relayout`` then fails with
``Cannot read properties of undefined (reading '_guiEditing')``, an error in the console
of a slow browser (a CPU throttled 3-4x, or a slow link to the server). A container
Plotly has not plotted has nothing to resize (a chart drawn later is sized when drawn),
so this script, run after ``plotly.min.js``, makes ``Plotly.relayout`` and
``Plotly.Plots.resize`` do nothing (a resolved promise) on such a container. Any other
call goes to Plotly unchanged. ``benchmarks/dashboard_plotly_race.py`` reproduces the
error.
"""

from __future__ import annotations

import base64

__all__ = ["PLOTLY_GUARD_JS", "plotly_guard_uri"]

#: The guard (idempotent; a page without Plotly is left alone).
PLOTLY_GUARD_JS = """(function () {
  var P = window.Plotly;
  if (!P || P.__guardianUnplottedGuard) { return; }
  function unplotted(gd) {
    if (typeof gd === "string") { gd = document.getElementById(gd); }
    return gd != null && gd.nodeType === 1 && gd._fullLayout == null;
  }
  function guard(obj, name) {
    var f = obj && obj[name];
    if (typeof f !== "function") { return; }
    obj[name] = function (gd) {
      return unplotted(gd) ? Promise.resolve(gd) : f.apply(this, arguments);
    };
  }
  guard(P, "relayout");
  guard(P.Plots, "resize");
  P.__guardianUnplottedGuard = true;
})();
"""


def plotly_guard_uri() -> str:
    """:data:`PLOTLY_GUARD_JS` as a ``data:`` URI (a script the page loads without a request)."""
    return "data:text/javascript;base64," + base64.b64encode(PLOTLY_GUARD_JS.encode()).decode()
