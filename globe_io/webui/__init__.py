"""What the project's web UIs share: the node's investigator UI (:mod:`globe_node.webui`)
and the administrators' console (:mod:`globe_admin.console`).

* :mod:`~globe_io.webui.site` — the host, origin and form-token checks, cookies and the
  security headers;
* :mod:`~globe_io.webui.sessions` — sign-in sessions, stored hashed, in memory;
* :mod:`~globe_io.webui.i18n` — catalogues in the four languages, and formats;
* :mod:`~globe_io.webui.errors` — the refusals those checks make.
"""
