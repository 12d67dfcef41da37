"""Access patterns: a project's key queries, explained on the shadow before and after a change.

`placeholders` binds a pattern's sample values and locates errors in its SQL; `explain` prepares
and explains patterns on a shadow database (never executing them) and reads the schema facts
the findings need; `compare` turns two snapshots into verdicts, the report block and findings.
"""

from changeapi.dryrun.access_patterns.compare import VERDICTS, access_patterns_report, attach_access_patterns
from changeapi.dryrun.access_patterns.explain import AccessPattern, PatternsSnapshot, explain_patterns, pattern_check
from changeapi.dryrun.access_patterns.placeholders import PatternError, bind_placeholders

__all__ = [
    "VERDICTS",
    "AccessPattern",
    "PatternError",
    "PatternsSnapshot",
    "access_patterns_report",
    "attach_access_patterns",
    "bind_placeholders",
    "explain_patterns",
    "pattern_check",
]
