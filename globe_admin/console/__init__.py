"""The administrators' console (``globe-admin ui``): a web application on the admin
workstation, served on a loopback address, in Arabic, English, French and Spanish.

It reviews membership applications (verified against the pinned genesis, the authority
fingerprint to compare out of band, the draft admission's verdict, exactly what an
approval signs), approves and rejects them, co-signs open proposals, and shows the
members, the membership log (verified from the genesis) and the network's statistics.
The admin key is never held: it is opened for each reading of the hub's admin routes
and each signature, with the passphrase typed in the page (or pre-supplied for
automation).  docs/ARCHITECTURE.md §12, "The administrators' console", says why.

* :mod:`~globe_admin.console.command` — the ``ui`` command;
* :mod:`~globe_admin.console.server` — the application and its loopback listener;
* :mod:`~globe_admin.console.app` — the console's state, the guard, refusals as pages;
* :mod:`~globe_admin.console.workstation` — the key, opened one piece of work at a time;
* :mod:`~globe_admin.console.reading` — the hub's answers, and what the console verifies;
* :mod:`~globe_admin.console.pages`, :mod:`~globe_admin.console.signing`,
  :mod:`~globe_admin.console.directory` — the pages and forms;
* :mod:`~globe_admin.console.labels` — the words for the hub's values.

Only :mod:`~globe_admin.console.command` is imported by ``globe-admin`` itself: the web
stack loads when the console runs.
"""
