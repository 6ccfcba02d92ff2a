"""Every error Cadenza raises, in one hierarchy.

Names follow the Cadence Python client (`cadence.error`) so that code catching those errors keeps
working after the import is renamed. Service errors carry a stable ``code`` and HTTP ``status`` so
the HTTP API and the client translate them both ways without a lookup table elsewhere.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

__all__ = [
    "ActivityCancelledError",
    "ActivityFailure",
    "ActivityTaskAlreadyStartedError",
    "ApiUnreachableError",
    "AuthError",
    "BadRequestError",
    "CadenzaError",
    "CancellationAlreadyRequestedError",
    "CommitConflictError",
    "ContinueAsNewError",
    "CredentialScopeError",
    "DomainNotActiveError",
    "EntityNotExistsError",
    "HistoryChangedError",
    "InternalServiceError",
    "InvalidAccessKeyError",
    "LimitExceededError",
    "NonDeterministicError",
    "PayloadTooLargeError",
    "QueryFailedError",
    "QueryTimeoutError",
    "ReplayedRequestError",
    "RequestExpiredError",
    "ServiceBusyError",
    "ServiceError",
    "SignatureMismatchError",
    "StaleTaskError",
    "TimerNotDueError",
    "UnsignedRequestError",
    "WorkflowExecutionAlreadyCompletedError",
    "WorkflowExecutionAlreadyStartedError",
    "WorkflowExecutionCanceledError",
    "WorkflowExecutionFailedError",
    "WorkflowExecutionTerminatedError",
    "WorkflowExecutionTimedOutError",
    "WorkflowFailure",
    "WorkflowTimeoutError",
    "error_from_wire",
]


class CadenzaError(Exception):
    """Root of every error Cadenza raises on purpose."""


# --- errors of the service (cross the HTTP API with a code and a status) -----------------------


class ServiceError(CadenzaError):
    code = "InternalServiceError"
    status = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_wire(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class BadRequestError(ServiceError, ValueError):
    """Malformed request or invalid option; ``field`` names what is wrong."""

    code = "BadRequestError"
    status = 400

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message, field=field, **details)
        self.field = field


class PayloadTooLargeError(BadRequestError):
    """A payload is over the limit; refused before anything is written."""

    code = "PayloadTooLargeError"
    status = 413


class EntityNotExistsError(ServiceError):
    code = "EntityNotExistsError"
    status = 404


class WorkflowExecutionAlreadyStartedError(ServiceError):
    code = "WorkflowExecutionAlreadyStartedError"
    status = 409

    def __init__(self, message: str, *, run_id: str = "", **details: Any) -> None:
        super().__init__(message, run_id=run_id, **details)
        self.run_id = run_id


class WorkflowExecutionAlreadyCompletedError(ServiceError):
    code = "WorkflowExecutionAlreadyCompletedError"
    status = 409


class CancellationAlreadyRequestedError(ServiceError):
    code = "CancellationAlreadyRequestedError"
    status = 409


class StaleTaskError(ServiceError):
    """A task (token or message) that no longer matches the run: a duplicate, late or forged one.

    Workers drop the task; history is untouched.
    """

    code = "StaleTaskError"
    status = 409


class HistoryChangedError(StaleTaskError):
    """Events arrived after the history a decision was made on: not stale, decide again."""

    code = "HistoryChangedError"


class TimerNotDueError(StaleTaskError):
    """A timer surfaced before its time (SQS delays stop at 15 minutes); ``fire_at`` says when
    it is due, in epoch milliseconds."""

    code = "TimerNotDueError"

    def __init__(self, message: str, *, fire_at: int, **details: Any) -> None:
        super().__init__(message, fire_at=fire_at, **details)
        self.fire_at = fire_at


class ActivityTaskAlreadyStartedError(StaleTaskError):
    """Another copy of this activity attempt is already running: the copy is dropped."""

    code = "ActivityTaskAlreadyStartedError"


class DomainNotActiveError(ServiceError):
    code = "DomainNotActiveError"
    status = 400


class LimitExceededError(ServiceError):
    code = "LimitExceededError"
    status = 429


class ServiceBusyError(ServiceError):
    code = "ServiceBusyError"
    status = 503


class ApiUnreachableError(ServiceBusyError):
    """No connection to the Cadenza API could be made (refused, or it timed out): no local
    stack runs there, or the address is wrong. Raised by the client's HTTP transport, never
    sent by a service; busy on the wire (same code and status), so whatever retries a busy
    service retries this too, while a CLI or a worker can tell the user what to check."""

    def __init__(self, message: str, *, target: str = "", reason: str = "",
                 **details: Any) -> None:
        super().__init__(message, target=target, reason=reason, **details)
        #: The API URL tried, and why the connection failed (the network library's words).
        self.target = target
        self.reason = reason


class QueryFailedError(ServiceError):
    code = "QueryFailedError"
    status = 400


class QueryTimeoutError(QueryFailedError):
    """No worker answered the query in time (is a worker polling the workflow's task list?)."""

    code = "QueryTimeoutError"
    status = 504


class InternalServiceError(ServiceError):
    code = "InternalServiceError"
    status = 500



# --- who may call: SigV4 refusals (403), raised before a route does anything -------------------


class AuthError(ServiceError):
    """The request is not signed by a principal the API accepts; nothing was done.

    API Gateway's own refusal carries no code: the client reads any 403 as this class.
    """

    code = "AuthError"
    status = 403


class UnsignedRequestError(AuthError):
    """No SigV4 signature (no Authorization header, or no X-Amz-Date)."""

    code = "UnsignedRequestError"


class SignatureMismatchError(AuthError):
    """The signature (or the body hash it covers) is not the one the request's bytes give."""

    code = "SignatureMismatchError"


class InvalidAccessKeyError(AuthError):
    """Signed with an access key the API does not know."""

    code = "InvalidAccessKeyError"


class CredentialScopeError(AuthError):
    """Signed for another region, another service or another day than the request's."""

    code = "CredentialScopeError"


class RequestExpiredError(AuthError):
    """X-Amz-Date is further from the API's clock than SigV4 allows (5 minutes)."""

    code = "RequestExpiredError"


class ReplayedRequestError(AuthError):
    """A signature already accepted once: the same request sent again."""

    code = "ReplayedRequestError"


_WIRE_ERRORS: dict[str, type[ServiceError]] = {
    cls.code: cls
    for cls in (
        ServiceError,
        BadRequestError,
        PayloadTooLargeError,
        EntityNotExistsError,
        WorkflowExecutionAlreadyStartedError,
        WorkflowExecutionAlreadyCompletedError,
        CancellationAlreadyRequestedError,
        StaleTaskError,
        HistoryChangedError,
        TimerNotDueError,
        ActivityTaskAlreadyStartedError,
        DomainNotActiveError,
        LimitExceededError,
        ServiceBusyError,
        QueryFailedError,
        QueryTimeoutError,
        InternalServiceError,
        AuthError,
        UnsignedRequestError,
        SignatureMismatchError,
        InvalidAccessKeyError,
        CredentialScopeError,
        RequestExpiredError,
        ReplayedRequestError,
    )
}


def error_from_wire(body: dict[str, Any]) -> ServiceError:
    """Rebuild the typed error an HTTP API response describes."""
    cls = _WIRE_ERRORS.get(str(body.get("code")), InternalServiceError)
    details = dict(body.get("details") or {})
    message = str(body.get("message", "unknown error"))
    return cls(message, **details)


# --- errors of workflow and activity code ------------------------------------------------------


class CommitConflictError(CadenzaError):
    """Another writer committed to the run first; the service re-reads and decides again."""


class NonDeterministicError(CadenzaError):
    """Workflow code made a decision that differs from the one its history recorded."""


class ActivityFailure(CadenzaError):
    """An activity failed or timed out; raised inside the workflow that awaited it."""

    def __init__(
        self,
        message: str,
        failure_details: str | None = None,
        heartbeat_details: str | None = None,
        *,
        reason: str = "",
        timeout_type: str | None = None,
    ) -> None:
        super().__init__(message if not failure_details else f"{message}\n{failure_details}")
        self.reason = reason or message
        self.failure_details = failure_details
        self.heartbeat_details = heartbeat_details
        self.timeout_type = timeout_type


class ActivityCancelledError(CadenzaError):
    """Raised by activity code to acknowledge a cancellation request."""

    def __init__(self, *details: Any) -> None:
        super().__init__("Activity cancelled")
        self.details = list(details)


class WorkflowFailure(CadenzaError):
    """The workflow run closed without a result (failed, terminated, timed out, cancelled)."""

    def __init__(self, message: str, *, reason: str = "", details: str | None = None,
                 close_status: str = "FAILED") -> None:
        super().__init__(message)
        self.reason = reason or message
        self.details = details
        self.close_status = close_status


class WorkflowExecutionFailedError(WorkflowFailure):
    """The run failed: the workflow raised, or decided FailWorkflowExecution."""


class WorkflowExecutionTerminatedError(WorkflowFailure):
    """The run was terminated."""


class WorkflowExecutionCanceledError(WorkflowFailure):
    """The run was cancelled."""


class WorkflowExecutionTimedOutError(WorkflowFailure):
    """The run exceeded its execution_start_to_close_timeout."""


class WorkflowTimeoutError(CadenzaError):
    """Waiting for a workflow result took longer than the caller allowed."""


class ContinueAsNewError(CadenzaError):
    def __init__(
        self,
        *args: Any,
        workflow_type: str | None = None,
        task_list: str | None = None,
        execution_start_to_close_timeout: timedelta | None = None,
        task_start_to_close_timeout: timedelta | None = None,
    ) -> None:
        super().__init__("ContinueAsNew")
        self.workflow_args = args
        self.workflow_type = workflow_type
        self.task_list = task_list
        self.execution_start_to_close_timeout = execution_start_to_close_timeout
        self.task_start_to_close_timeout = task_start_to_close_timeout
