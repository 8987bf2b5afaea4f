"""One command-line scaffold, on click, for ``globe-hub``, ``globe-node`` and ``globe-admin``.

What the three programs share lives here once (docs/OPERATIONS.md describes it for users):

* **a command's result**: a command returns ``(data, lines)`` (:data:`Result`) or an exit
  status; :func:`run` prints ``data`` as one JSON document with ``--json``, else ``lines``;
* **refusals**: every :class:`~protocol.errors.GlobeError` and :class:`OSError` becomes one
  line ``PROG: error: <detail>`` on stderr and exit status 1 (control and bidi characters
  made visible); a usage error prints the usage and ``... error: <detail>``, exit 2; an
  interrupt prints ``PROG: interrupted``, exit 130; a bug is one line too, unless
  ``GLOBE_DEBUG`` is set, which lets the traceback through;
* **passphrases**: ``--passphrase-file``, else an environment variable, else a prompt on a
  terminal; never the command line (:func:`read_passphrase`);
* **common options and argument types**: ``--json``, ``--version``, ``--dir``,
  ``--passphrase-file``, ports, seconds, counts, limits, choices taken from an enum, and
  options that take several values (``--to A B``, :func:`many`);
* **files**: atomic writes that refuse to overwrite (:func:`write_file`), genesis and sealed
  key files (:func:`load_genesis`, :func:`load_signing_key`), progress on a terminal.

A program is a :func:`program` group to which commands declared with :func:`command` are
added; its entry point is ``run(group, argv)``.  This package imports ``protocol``,
``globe_io.errors`` and click only, so the administrators' tool uses it without the hub or
the node (ARCHITECTURE.md §1).
"""

from globe_io.cli.app import (
    DISTRIBUTION,
    EXIT_INTERRUPTED,
    EXIT_REFUSED,
    EXIT_USAGE,
    GlobeCommand,
    GlobeGroup,
    Outcome,
    RefusedWithOutput,
    Result,
    command,
    iso,
    one_line,
    os_error,
    program,
    run,
    safe,
)
from globe_io.cli.files import (
    KDF_COSTS,
    MIN_PASSPHRASE,
    load_genesis,
    load_signing_key,
    progress,
    read_passphrase,
    write_file,
)
from globe_io.cli.options import (
    COUNT,
    LIMIT,
    PATH,
    PORT,
    ManyOption,
    Seconds,
    Whole,
    choice_of,
    dir_option,
    kdf_option,
    log_format_option,
    log_level_option,
    many,
    one_of,
    passphrase_file_option,
    wants_json,
)

__all__ = [
    "COUNT",
    "DISTRIBUTION",
    "EXIT_INTERRUPTED",
    "EXIT_REFUSED",
    "EXIT_USAGE",
    "KDF_COSTS",
    "LIMIT",
    "MIN_PASSPHRASE",
    "PATH",
    "PORT",
    "GlobeCommand",
    "GlobeGroup",
    "ManyOption",
    "Outcome",
    "RefusedWithOutput",
    "Result",
    "Seconds",
    "Whole",
    "choice_of",
    "command",
    "dir_option",
    "iso",
    "kdf_option",
    "load_genesis",
    "load_signing_key",
    "log_format_option",
    "log_level_option",
    "many",
    "one_line",
    "one_of",
    "os_error",
    "passphrase_file_option",
    "program",
    "progress",
    "read_passphrase",
    "run",
    "safe",
    "wants_json",
    "write_file",
]
