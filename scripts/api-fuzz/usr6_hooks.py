"""Schemathesis check loaded by scripts/check-api-fuzz (SCHEMATHESIS_HOOKS=usr6_hooks).

USR-6 says who may do what; the OpenAPI document names, per operation, the roles allowed
(`x-flotilla-roles`). Fuzzing with an ordinary administrator's token, an operation only a
system administrator may perform must never be done: every answer to a request with the
operation's own method is a refusal (403, or 401 where the fuzzer sent no valid credential).
"""
import os

import schemathesis

FUZZ_ROLE = os.environ.get("FLOTILLA_FUZZ_ROLE", "system")


@schemathesis.check
def usr6_forbidden_action_refused(ctx, response, case):
    roles = case.operation.definition.raw.get("x-flotilla-roles")
    if roles is None or FUZZ_ROLE in roles or case.method.upper() != case.operation.method.upper():
        return None
    if response.status_code not in (401, 403):
        raise AssertionError(
            f"USR-6: {case.operation.method.upper()} {case.operation.path} is for {', '.join(roles)} "
            f"administrators, but the {FUZZ_ROLE} administrator's request answered {response.status_code}"
        )
    return None
