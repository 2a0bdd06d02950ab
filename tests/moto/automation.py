"""SSM Automation's execution APIs, which moto lacks, emulated for the test server.

Emulated: StartAutomationExecution, GetAutomationExecution, DescribeAutomationExecutions,
DescribeAutomationStepExecutions, SendAutomationSignal and StopAutomationExecution, over
the Automation documents published to moto's own SSM backend. Runs over targets (rate
control) start one child execution per target and honour MaxConcurrency and MaxErrors.

Time plays no part. An execution moves one transition each time a request reads it, so a
test sees the same sequence on every run: the first read starts the first step, each later
read ends the running step and starts the next one. A read of a child moves its parent's
run, children and all. A request that carries a NextToken continues a listing and moves
nothing. Steps do nothing: each one succeeds, unless a test has told the emulation
otherwise through POST /_emulation/automation/steps (see `set_controls`). `aws:approve` and
`aws:pause` wait for a signal. Interactive mode waits for a StartStep signal before each step.

Not emulated: real timing and timeouts (no step ends TimedOut), retries (`maxAttempts` is
only reported), `onCancel`, branch choices (the emulation takes `Default`, else the first
choice), loop bodies (a loop is one step), child runbooks of `aws:executeAutomation`,
references other than `{{ Parameter }}`, parameter types and patterns, the StopStep and
Revoke signals, cross-account TargetLocations, and targets other than ParameterValues.
"""

import json
import math
import re
import threading
import time
import uuid

import yaml

CONTROL_PATH = "/_emulation/automation/steps"
FINISHED = {"Success", "Failed", "Cancelled", "TimedOut"}
WAITING_ACTIONS = {"aws:approve": {"Approve", "Reject"}, "aws:pause": {"Resume"}}
NO_OUTPUT = "No output available yet because the step is not successfully executed"
REFERENCE = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
ABORT = object()
INVALID_PARAMETERS = "InvalidAutomationExecutionParametersException"

# One lock for everything below: the server answers requests on many threads.
lock = threading.Lock()
executions = {}  # execution id -> Execution, in the order they started
client_tokens = {}  # ClientToken -> (the request that used it, execution id)
controls = {}  # document name -> the last body posted to CONTROL_PATH for it


class Failure(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind
        self.message = message


class Execution:
    def __init__(self, caller, document, parameters, request, parent=None, target=None):
        self.id = str(uuid.uuid4())
        self.caller = caller
        self.name, self.version, self.content = document
        self.steps = self.content.get("mainSteps") or []
        self.parameters = parameters
        self.request = request
        self.mode = request.get("Mode") or "Auto"
        self.started = time.time()
        self.ended = None
        self.status = "Pending"
        self.failure = None  # the message of the step failure that fails the execution
        self.records = []  # StepExecution objects, in the order the steps started
        self.current = None  # the record of the step that runs or waits
        self.upcoming = None  # the step to start next
        self.waiting_for_start = False  # Interactive mode waits for a StartStep signal
        self.stop = None  # "Cancel" or "Complete" once StopAutomationExecution asked for it
        # Controls posted later do not reach a run that has started, nor its children.
        self.control = parent.control if parent else controls.get(self.name, {})
        self.step_controls = self.control.get("Steps") or {}
        self.target_control = (self.control.get("Targets") or {}).get(target)
        self.parent = parent
        self.target = target
        self.children = None  # a list for a run over targets
        self.queue = []  # (target value, parameters) not launched yet
        executions[self.id] = self


def handle(environ, body, region):
    """The answer (status, JSON object) to an emulated request, or None for any other."""
    if environ["REQUEST_METHOD"] != "POST":
        return None
    try:
        if environ.get("PATH_INFO") == CONTROL_PATH:
            with lock:
                return 200, set_controls(parse(body))
        operation = operation_of(environ)
        if operation is None:
            return None
        caller = (account_of(environ), region)
        with lock:
            request = parse(body)
            answer = OPERATIONS[operation](request, caller)
            if answer_lost(operation, request, answer):
                return 500, {"__type": "InternalServerError", "message": "emulated: the answer was lost"}
            return 200, answer
    except Failure as failure:
        return 400, {"__type": failure.kind, "message": failure.message}


def operation_of(environ):
    service, _, operation = environ.get("HTTP_X_AMZ_TARGET", "").partition(".")
    return operation if service == "AmazonSSM" and operation in OPERATIONS else None


def parse(body):
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        raise Failure("SerializationException", "the body is not JSON")
    if not isinstance(request, dict):
        raise Failure("SerializationException", "the body is not a JSON object")
    return request


def account_of(environ):
    """The account moto gives the request's access key, as moto's own backends do."""
    from moto.iam.models import get_account_id_from

    credential = environ.get("HTTP_AUTHORIZATION", "").split("Credential=")[-1]
    return get_account_id_from(credential.split("/")[0])


def set_controls(request):
    """Test control: how the steps of a document's executions started from now on end.

    Body: {"DocumentName": NAME, "Steps": {STEP: CONTROL}, "Targets": {VALUE: CONTROL}},
    CONTROL being {"Fail": bool, "FailureMessage": str, "Outputs": {NAME: [str]},
    "Reads": N}. "LostAnswers": {OPERATION: N} drops the next N answers of OPERATION for the
    document's executions (the request takes effect; the caller gets a 500). A Targets entry applies to every step of the child run over that target
    value, in place of the Steps entries. Each post replaces the document's controls, so
    tests that run at once each need a document of their own.
    """
    name = request.get("DocumentName")
    if not isinstance(name, str) or not name:
        raise Failure("ValidationException", "DocumentName is required")
    for control in [*(request.get("Steps") or {}).values(), *(request.get("Targets") or {}).values()]:
        if not isinstance(control, dict):
            raise Failure("ValidationException", "each control must be an object")
        reads = control.get("Reads", 1)
        if not isinstance(reads, int) or reads < 1:
            raise Failure("ValidationException", "Reads must be a whole number of at least 1")
    controls[name] = request
    return {}


def answer_lost(operation, request, answer):
    """Whether a "LostAnswers" control drops this answer: the request took effect, and the
    caller gets a 500 instead, as when a connection drops before the answer arrives."""
    execution = executions.get(request.get("AutomationExecutionId") or answer.get("AutomationExecutionId"))
    name = execution.name if execution else request.get("DocumentName")
    lost = (controls.get(name) or {}).get("LostAnswers") or {}
    if lost.get(operation, 0) <= 0:
        return False
    lost[operation] -= 1
    return True


# StartAutomationExecution


def start_automation_execution(request, caller):
    token = request.get("ClientToken")
    if token in client_tokens:
        earlier, execution_id = client_tokens[token]
        if earlier != request:
            raise Failure("IdempotentParameterMismatch", f"client token {token} was used with another request")
        return {"AutomationExecutionId": execution_id}
    if request.get("Mode", "Auto") not in ("Auto", "Interactive"):
        raise Failure("ValidationException", f"unknown mode {request['Mode']}")
    document = find_document(caller, request.get("DocumentName") or "", request.get("DocumentVersion"))
    declared = document[2].get("parameters") or {}
    targets = targets_of(request, declared)
    # A child's target supplies the target parameters, so the run itself may lack them.
    exempt = set()
    if targets is not None:
        exempt = {request.get("TargetParameterName")} | {name for _, overrides in targets for name in overrides}
    parameters = resolve_parameters(declared, request.get("Parameters") or {}, exempt)
    execution = Execution(caller, document, parameters, request)
    if targets is not None:
        execution.children = []
        execution.queue = targets
        execution.max_concurrency = max(1, limit(request, "MaxConcurrency", "10", len(targets), math.ceil))
        execution.max_errors = limit(request, "MaxErrors", "0", len(targets), math.floor)
    if token:
        client_tokens[token] = (request, execution.id)
    return {"AutomationExecutionId": execution.id}


def find_document(caller, name, version):
    from moto.ssm.models import ssm_backends

    account, region = caller
    name = name.split(":document/")[-1]  # the name, or arn:aws:ssm:REGION:ACCOUNT:document/NAME
    documents = ssm_backends[account][region]._documents.get(name)
    if documents is None or documents.get_default_version().document_type != "Automation":
        raise Failure("AutomationDefinitionNotFoundException", f"no Automation document named {name}")
    if version in (None, "", "$DEFAULT"):
        document = documents.get_default_version()
    elif version == "$LATEST":
        document = documents.get_latest_version()
    else:
        document = documents.versions.get(version)
    if document is None:
        raise Failure("AutomationDefinitionVersionNotFoundException", f"document {name} has no version {version}")
    load = json.loads if document.document_format == "JSON" else yaml.safe_load
    return document.name, document.document_version, load(document.content)


def targets_of(request, declared):
    """The runs over targets as (target value, parameters), or None for a single run."""
    parameter, targets, maps = request.get("TargetParameterName"), request.get("Targets"), request.get("TargetMaps")
    if not targets and not maps:
        return None
    if targets and maps:
        raise Failure(INVALID_PARAMETERS, "Targets and TargetMaps exclude each other")
    if maps:
        for names in maps:
            check_declared(declared, names)
        # The target a child reports: the TargetParameterName entry of its map, else the
        # first entry, values joined with commas (AWS does not say what it reports).
        return [(",".join(names.get(parameter) or next(iter(names.values()), [])), names) for names in maps]
    if not parameter:
        raise Failure(INVALID_PARAMETERS, "Targets need a TargetParameterName")
    check_declared(declared, [parameter])
    for target in targets:
        if target.get("Key") != "ParameterValues":
            # Tag and resource group targets would need moto's tagging backend: not emulated.
            raise Failure("InvalidTarget", f"target key {target.get('Key')} is not emulated, only ParameterValues")
    return [(value, {parameter: [value]}) for target in targets for value in target.get("Values") or []]


def check_declared(declared, names):
    undeclared = sorted(set(names) - set(declared))
    if undeclared:
        raise Failure(INVALID_PARAMETERS, f"parameters not declared: {', '.join(undeclared)}")


def resolve_parameters(declared, supplied, exempt):
    """The execution's parameters: those supplied, then the defaults, as lists of strings."""
    check_declared(declared, supplied)
    resolved, missing = {}, []
    for name, definition in declared.items():
        definition = definition or {}
        if name in supplied:
            resolved[name] = list(supplied[name])
        elif definition.get("default") is not None:
            resolved[name] = strings(definition["default"])
        elif "default" not in definition and name not in exempt:
            missing.append(name)
    if missing:
        raise Failure(INVALID_PARAMETERS, f"parameters required: {', '.join(missing)}")
    return resolved


def strings(value):
    values = value if isinstance(value, list) else [value]
    return [item if isinstance(item, str) else json.dumps(item) for item in values]


def limit(request, field, default, total, rounding):
    text = request.get(field) or default
    found = re.fullmatch(r"(\d+)(%?)", text)
    if found is None:
        raise Failure("ValidationException", f"{field} {text} is neither a number nor a percentage")
    number = int(found[1])
    return rounding(total * number / 100) if found[2] else number


# Walking an execution: one transition per read


def read(execution):
    """Moves the run the execution belongs to (its parent's, for a child) one transition."""
    advance(execution.parent or execution)


def advance(execution):
    if execution.status in FINISHED:
        return
    if execution.children is not None:
        return advance_targets(execution)
    if execution.status == "Cancelling":
        if execution.current is not None:
            execution.current.update(StepStatus="Cancelled", ExecutionEndTime=time.time())
        return end(execution, "Cancelled")
    if execution.status == "Pending":
        execution.upcoming = execution.steps[0]["name"] if execution.steps else None
    record = execution.current
    if record is not None:
        if record["StepStatus"] == "Waiting":
            return
        if record["StepStatus"] == "InProgress":
            record["_reads"] -= 1
            if record["_reads"] > 0:
                return
            control = record["_control"]
            if control.get("Fail"):
                finish_step(execution, record, failure=control.get("FailureMessage") or "emulated failure")
            else:
                finish_step(execution, record, outputs=control.get("Outputs"))
        execution.current = None
        following = successor(execution, record)
        if following is ABORT:
            return end(execution, "Failed")
        execution.upcoming = following
    elif execution.waiting_for_start and execution.stop is None:
        return
    if execution.stop == "Complete":
        execution.upcoming = None
    if execution.upcoming is None:
        return end(execution, "Failed" if execution.failure else "Success")
    if execution.mode == "Interactive":
        execution.status = "Waiting"
        execution.waiting_for_start = True
        return
    start_step(execution, execution.upcoming)


def advance_targets(parent):
    """One transition of a run over targets: each running child moves, then more launch."""
    if parent.status == "Pending":
        parent.status = "InProgress"
    for child in parent.children:
        advance(child)
    if parent.status == "Cancelling":
        return end(parent, "Cancelled")
    running = [child for child in parent.children if child.status not in FINISHED]
    errors = sum(child.status != "Success" for child in parent.children if child.status in FINISHED)
    launching = parent.stop is None and errors <= parent.max_errors
    while launching and parent.queue and len(running) < parent.max_concurrency:
        target, overrides = parent.queue.pop(0)
        child = Execution(parent.caller, (parent.name, parent.version, parent.content),
                          {**parent.parameters, **overrides}, {"Mode": parent.mode}, parent, target)
        parent.children.append(child)
        running.append(child)
    if running or (launching and parent.queue):
        return
    if errors:
        parent.failure = f"{errors} of {len(parent.children)} child executions did not succeed"
    end(parent, "Failed" if errors else "Success")


def start_step(execution, name):
    step = next((step for step in execution.steps if step.get("name") == name), None)
    if step is None:
        execution.failure = f"step {name} does not exist"
        return end(execution, "Failed")
    control = execution.target_control or execution.step_controls.get(name) or {}
    inputs = substitute(step.get("inputs") or {}, typed_parameters(execution))
    record = {
        "StepName": name,
        "Action": step.get("action", ""),
        "OnFailure": step.get("onFailure", "Abort"),
        "MaxAttempts": whole(step.get("maxAttempts")) or 1,
        "ExecutionStartTime": time.time(),
        "StepStatus": "Waiting" if step.get("action") in WAITING_ACTIONS else "InProgress",
        "Inputs": {key: json.dumps(value) for key, value in inputs.items()},
        "StepExecutionId": str(uuid.uuid4()),
        "IsEnd": flag(step.get("isEnd"), False),
        "IsCritical": flag(step.get("isCritical"), step.get("onFailure") != "Continue"),
        "_step": step,
        "_control": control,
        "_reads": control.get("Reads", 1),
    }
    if whole(step.get("timeoutSeconds")) is not None:
        record["TimeoutSeconds"] = whole(step["timeoutSeconds"])
    following = success_successor(execution, step)
    if following:
        record["NextStep"] = following
    execution.records.append(record)
    execution.current = record
    execution.status = record["StepStatus"]


def finish_step(execution, record, failure=None, outputs=None):
    record["ExecutionEndTime"] = time.time()
    if failure is None:
        record["StepStatus"] = "Success"
        if outputs:
            record["Outputs"] = outputs
    else:
        record["StepStatus"] = "Failed"
        record["FailureMessage"] = failure
        record["FailureDetails"] = {"FailureStage": "Invocation", "FailureType": "Action"}
        if record["IsCritical"] or record["OnFailure"] == "Abort":
            execution.failure = failure
    execution.status = "InProgress"


def successor(execution, record):
    """The step after a finished one (reference 4.3): a name, None to end, or ABORT."""
    if record["StepStatus"] == "Failed":
        if record["OnFailure"] == "Abort":
            return ABORT
        if record["OnFailure"].startswith("step:"):
            return record["OnFailure"][len("step:"):]
    return success_successor(execution, record["_step"])


def success_successor(execution, step):
    if step.get("action") == "aws:branch":
        # Choices are not evaluated: the emulation takes Default, else the first choice.
        inputs = step.get("inputs") or {}
        choices = inputs.get("Choices") or [{}]
        if inputs.get("Default") or choices[0].get("NextStep"):
            return inputs.get("Default") or choices[0]["NextStep"]
    if flag(step.get("isEnd"), False):
        return None
    if step.get("nextStep"):
        return step["nextStep"]
    index = execution.steps.index(step) + 1
    return execution.steps[index]["name"] if index < len(execution.steps) else None


def end(execution, status):
    execution.status = status
    execution.ended = time.time()
    execution.current = None
    execution.waiting_for_start = False


def flag(value, default):
    if value is None:
        return default
    return value.lower() == "true" if isinstance(value, str) else bool(value)


def whole(value):
    """A number written as a number or a decimal string (reference 4.1), else None."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def typed_parameters(execution):
    """Parameter values typed as declared, for the references in step inputs."""
    declared = execution.content.get("parameters") or {}
    typed = {}
    for name, values in execution.parameters.items():
        kind = (declared.get(name) or {}).get("type", "String")
        try:
            if kind == "MapList":
                typed[name] = [json.loads(value) for value in values]
            elif kind == "StringList" or kind.startswith("List<"):
                typed[name] = list(values)
            elif kind == "Integer":
                typed[name] = int(values[0])
            elif kind == "Boolean":
                typed[name] = values[0].lower() == "true"
            elif kind == "StringMap":
                typed[name] = json.loads(values[0])
            else:
                typed[name] = ",".join(values)
        except (ValueError, IndexError):
            typed[name] = ",".join(values)
    return typed


def substitute(value, parameters):
    """Resolves `{{ Parameter }}` references (reference 5.4); any other stays as written."""
    if isinstance(value, dict):
        return {key: substitute(item, parameters) for key, item in value.items()}
    if isinstance(value, list):
        resolved = []
        for item in value:
            new = substitute(item, parameters)
            # A whole reference to a list inside a list is spliced into it.
            spliced = isinstance(item, str) and REFERENCE.fullmatch(item) and isinstance(new, list)
            resolved.extend(new) if spliced else resolved.append(new)
        return resolved
    if not isinstance(value, str):
        return value
    whole = REFERENCE.fullmatch(value)
    if whole and whole[1] in parameters:
        return parameters[whole[1]]

    def text(reference):
        if reference[1] not in parameters:
            return reference[0]
        found = parameters[reference[1]]
        return found if isinstance(found, str) else json.dumps(found)

    return REFERENCE.sub(text, value)


# The other operations


def find(request, caller):
    execution = executions.get(request.get("AutomationExecutionId"))
    if execution is None or execution.caller != caller:
        raise Failure("AutomationExecutionNotFoundException",
                      f"no automation execution {request.get('AutomationExecutionId')}")
    return execution


def get_automation_execution(request, caller):
    execution = find(request, caller)
    read(execution)
    view = summary(execution)
    view.update(
        StepExecutions=[public(record) for record in execution.records],
        StepExecutionsTruncated=False,
        Parameters=execution.parameters,
    )
    return {"AutomationExecution": view}


def summary(execution):
    """The fields GetAutomationExecution and DescribeAutomationExecutions share."""
    request = execution.request
    view = {
        "AutomationExecutionId": execution.id,
        "DocumentName": execution.name,
        "DocumentVersion": execution.version,
        "AutomationExecutionStatus": execution.status,
        "ExecutionStartTime": execution.started,
        "ExecutedBy": f"arn:aws:sts::{execution.caller[0]}:user/moto",  # who moto says calls
        "Mode": execution.mode,
    }
    optional = {
        "ExecutionEndTime": execution.ended,
        "FailureMessage": execution.failure if execution.status == "Failed" else None,
        "CurrentStepName": execution.current and execution.current["StepName"],
        "CurrentAction": execution.current and execution.current["Action"],
        "ParentAutomationExecutionId": execution.parent and execution.parent.id,
        "Target": execution.target,
        "Outputs": document_outputs(execution),
    }
    if execution.children is not None:
        launched = [child.target for child in execution.children]
        optional.update(
            TargetParameterName=request.get("TargetParameterName"),
            Targets=request.get("Targets"),
            TargetMaps=request.get("TargetMaps"),
            ResolvedTargets={"ParameterValues": launched + [target for target, _ in execution.queue],
                             "Truncated": False},
            MaxConcurrency=request.get("MaxConcurrency") or "10",
            MaxErrors=request.get("MaxErrors") or "0",
        )
    view.update((key, value) for key, value in optional.items() if value is not None)
    return view


def document_outputs(execution):
    if execution.children is not None or not execution.content.get("outputs"):
        return None
    outputs = {}
    for name in execution.content["outputs"]:
        step_name, _, output = name.partition(".")
        found = [record for record in execution.records if record["StepName"] == step_name]
        values = found[-1].get("Outputs", {}).get(output) if found and found[-1]["StepStatus"] == "Success" else None
        outputs[name] = values or [NO_OUTPUT]
    return outputs


def public(record):
    return {key: value for key, value in record.items() if not key.startswith("_")}


def describe_automation_step_executions(request, caller):
    execution = find(request, caller)
    if not request.get("NextToken"):
        read(execution)
    fields = {"StepExecutionStatus": "StepStatus", "StepName": "StepName",
              "StepExecutionId": "StepExecutionId", "Action": "Action"}
    records = [public(record) for record in execution.records]
    for item in request.get("Filters") or []:
        if item.get("Key") not in fields:
            raise Failure("InvalidFilterKey", f"filter key {item.get('Key')} is not emulated")
        wanted = {value.lower() for value in item.get("Values") or []}
        records = [record for record in records if record[fields[item["Key"]]].lower() in wanted]
    if request.get("ReverseOrder"):
        records.reverse()
    return page(request, "StepExecutions", records)


def describe_automation_executions(request, caller):
    filters = request.get("Filters") or []
    tests = {
        "ExecutionId": lambda execution: execution.id,
        "ParentExecutionId": lambda execution: execution.parent and execution.parent.id,
        "ExecutionStatus": lambda execution: execution.status,
        "DocumentNamePrefix": lambda execution: execution.name,
        "CurrentAction": lambda execution: execution.current and execution.current["Action"],
        "AutomationType": lambda execution: "Local",
    }
    for item in filters:
        if item.get("Key") not in tests:
            raise Failure("InvalidFilterKey", f"filter key {item.get('Key')} is not emulated")
    if not request.get("NextToken"):
        # Only the executions a filter names move, so listings never move other tests' runs.
        named = {value for item in filters if item["Key"] in ("ExecutionId", "ParentExecutionId")
                 for value in item.get("Values") or []}
        found = [executions[execution_id] for execution_id in named if execution_id in executions]
        runs = {(execution.parent or execution).id: execution for execution in found if execution.caller == caller}
        for execution in runs.values():
            read(execution)

    def matches(execution, item):
        found = tests[item["Key"]](execution) or ""
        values = item.get("Values") or []
        if item["Key"] == "DocumentNamePrefix":
            return any(found.startswith(value) for value in values)
        return found.lower() in {value.lower() for value in values}

    listed = [
        dict(summary(execution), AutomationType="Local")
        for execution in executions.values()
        if execution.caller == caller and all(matches(execution, item) for item in filters)
    ]
    return page(request, "AutomationExecutionMetadataList", listed)


def page(request, field, items):
    size = request.get("MaxResults", 50)
    if not isinstance(size, int) or not 1 <= size <= 50:
        raise Failure("ValidationException", "MaxResults must be between 1 and 50")
    token = request.get("NextToken") or "0"
    if not token.isdigit() or int(token) > len(items):
        raise Failure("InvalidNextToken", f"next token {token} is not valid")
    start = int(token)
    answer = {field: items[start:start + size]}
    if start + size < len(items):
        answer["NextToken"] = str(start + size)
    return answer


def send_automation_signal(request, caller):
    execution = find(request, caller)
    signal = request.get("SignalType")
    payload = request.get("Payload") or {}
    record = execution.current
    waiting = execution.status == "Waiting" and record is not None and record["StepStatus"] == "Waiting"
    if waiting and signal in WAITING_ACTIONS.get(record["Action"], ()):
        if signal == "Reject":
            comment = " ".join(payload.get("Comment") or [])
            failure = f"step {record['StepName']} was rejected" + (f": {comment}" if comment else "")
            finish_step(execution, record, failure=failure)
        elif signal == "Approve" and approvals_left(execution, record) > 1:
            # MinRequiredApprovals: the step waits for the rest (each signal counts as one
            # approver here; AWS counts distinct approvers).
            record["_approvals"] = record.get("_approvals", 0) + 1
        else:
            finish_step(execution, record)
    elif signal == "StartStep" and execution.waiting_for_start and execution.status == "Waiting":
        name = (payload.get("StepName") or [execution.upcoming])[0]
        if not any(step.get("name") == name for step in execution.steps):
            raise Failure("AutomationStepNotFoundException", f"no step named {name}")
        execution.waiting_for_start = False
        start_step(execution, name)
    else:
        raise Failure("InvalidAutomationSignalException",
                      f"no step of automation execution {execution.id} waits for a {signal} signal")
    return {}


def approvals_left(execution, record):
    """How many approvals the waiting approve step still needs, this one included."""
    step = next((step for step in execution.steps if step.get("name") == record["StepName"]), {})
    try:
        needed = int((step.get("inputs") or {}).get("MinRequiredApprovals", 1))
    except (TypeError, ValueError):
        needed = 1
    return needed - record.get("_approvals", 0)


def stop_automation_execution(request, caller):
    execution = find(request, caller)
    if execution.status in FINISHED:
        raise Failure("InvalidAutomationStatusUpdateException",
                      f"automation execution {execution.id} has already ended {execution.status}")
    kind = request.get("Type") or "Cancel"
    if kind == "Cancel":
        cancel(execution)
    elif kind == "Complete":
        execution.stop = execution.stop or "Complete"
    else:
        raise Failure("ValidationException", f"unknown stop type {kind}")
    return {}


def cancel(execution):
    """Cancelling now, Cancelled at the next read, with the running children."""
    if execution.status == "Cancelling":
        return
    execution.status = "Cancelling"
    execution.stop = "Cancel"
    if execution.current is not None:
        execution.current["StepStatus"] = "Cancelling"
    for child in execution.children or []:
        if child.status not in FINISHED:
            cancel(child)


OPERATIONS = {
    "StartAutomationExecution": start_automation_execution,
    "GetAutomationExecution": get_automation_execution,
    "DescribeAutomationExecutions": describe_automation_executions,
    "DescribeAutomationStepExecutions": describe_automation_step_executions,
    "SendAutomationSignal": send_automation_signal,
    "StopAutomationExecution": stop_automation_execution,
}
