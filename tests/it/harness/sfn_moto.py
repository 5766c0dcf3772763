"""moto, in this process, executing state machines whose Lambda tasks the REAL function serves.

Usage: sfn_moto.py PORT INVOKE_URL. Serves moto on 127.0.0.1:PORT with Step Functions execution
on and prints "ready"; runs until killed (by the harness's lifeline wrapper). Every Lambda invoke a
state machine makes (`arn:aws:states:::lambda:invoke` or a bare function ARN) is POSTed to
INVOKE_URL, where the test harness (tests/it/harness/workflows.rs) hands the payload to a
`wishlist-migrator-lambda` process through the Runtime API emulator and returns its answer; a
function error comes back as Lambda's FunctionError with {"errorType", "errorMessage"}, so Retry
and Catch match on the function's errorType as they do on AWS.

Why patches: moto's own Lambda runs code in docker, which this machine does not have, so the
seam is moto's Lambda client in its States Language interpreter. And moto 5.2.5's Distributed Map
(checked in its source: distributed_item_processor_worker.py, result_writer/resource_eval_s3.py)
closes a failed child as a success with no output, ignores ToleratedFailurePercentage/Count, and
writes a ResultWriter manifest with no result files. The two small patches below give it what
Step Functions does: a Map Run whose failed children exceed the tolerance fails with
States.ExceedToleratedFailureThreshold (checked when every child has ended; AWS stops starting
children as soon as it is exceeded), and SUCCEEDED_0.json / FAILED_0.json beside the manifest,
in AWS's format, for redriving the failed targets.

moto 5.2.5 has no RedriveExecution at all; it is not faked here. The tests redrive the way an
operator can without it: a new execution over the failed items (docs/deploy.md, "Redrive").
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import urllib.request

PORT = int(sys.argv[1])
INVOKE_URL = sys.argv[2]
# moto's interpreter reaches S3 (ItemReader, ResultWriter) through its own server on MOTO_PORT.
os.environ["MOTO_PORT"] = str(PORT)

from moto.moto_server.threaded_moto_server import ThreadedMotoServer  # noqa: E402
from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType  # noqa: E402
from moto.stepfunctions.parser.asl.component.common.error_name import failure_event  # noqa: E402
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (  # noqa: E402
    StatesErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (  # noqa: E402
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (  # noqa: E402
    distributed_iteration_component as distributed,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (  # noqa: E402
    distributed_item_processor_worker as worker,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import (  # noqa: E402
    resource_eval_s3,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils  # noqa: E402
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails  # noqa: E402
from moto.stepfunctions.parser.asl.eval.program_state import ProgramError  # noqa: E402
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for  # noqa: E402


class RealFunction:
    """The `invoke` of a boto3 Lambda client, answered by the real function."""

    def invoke(self, FunctionName=None, Payload=None, **_):
        body = Payload if isinstance(Payload, bytes) else (Payload or "{}").encode()
        request = urllib.request.Request(INVOKE_URL, data=body, method="POST")
        with urllib.request.urlopen(request, timeout=900) as response:
            answer = json.loads(response.read())
        if "errorType" in answer:
            payload = {"errorType": answer["errorType"], "errorMessage": answer["errorMessage"]}
            return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": io.BytesIO(json.dumps(payload).encode())}
        return {"StatusCode": 200, "ExecutedVersion": "7", "Payload": io.BytesIO(json.dumps(answer["response"]).encode())}


def client_for(region, service, state_credentials=None):
    if service == "lambda":
        return RealFunction()
    return boto_client_for(region=region, service=service, state_credentials=state_credentials)


lambda_eval_utils.boto_client_for = client_for

_eval_job = worker.DistributedItemProcessorWorker._eval_job


def eval_job(self, env, job):
    """Records each child's outcome on its Map Run, as AWS's ResultWriter reports it."""
    _eval_job(self, env, job)
    record = self._map_run_record
    results = record.__dict__.setdefault("wm_results", [])
    state = env.program_state()
    entry = {"Input": json.dumps(job.job_input), "Name": f"{job.job_index}"}
    if isinstance(state, ProgramError) or job.job_output is None:
        error = (state.error or {}) if isinstance(state, ProgramError) else {}
        entry.update(Status="FAILED", Error=error.get("error", "States.TaskFailed"), Cause=error.get("cause", ""))
    else:
        entry.update(Status="SUCCEEDED", Output=json.dumps(job.job_output))
    results.append(entry)


worker.DistributedItemProcessorWorker._eval_job = eval_job

_map_run = distributed.DistributedIterationComponent._map_run


def map_run(self, env, eval_input):
    _map_run(self, env, eval_input)
    record = eval_input.map_run_record
    results = record.__dict__.get("wm_results", [])
    failed = sum(1 for r in results if r["Status"] == "FAILED")
    total = max(len(results), 1)
    percentage = float(eval_input.tolerated_failure_percentage or 0)
    count = int(eval_input.tolerated_failure_count or 0)
    if failed and failed * 100.0 > percentage * total and failed > count:
        name = StatesErrorName(typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold)
        cause = f"{failed} of {total} items failed; tolerated: {percentage:g}%"
        raise failure_event.FailureEventException(
            failure_event.FailureEvent(
                env=env,
                error_name=name,
                event_type=HistoryEventType.MapRunFailed,
                event_details=EventDetails(
                    executionFailedEventDetails=ExecutionFailedEventDetails(error=StatesErrorNameType.StatesExceedToleratedFailureThreshold.to_name(), cause=cause)
                ),
            )
        )


distributed.DistributedIterationComponent._map_run = map_run

_put_object = resource_eval_s3.ResourceEvalS3._handle_put_object


def put_object(env, resource_runtime_part, state_credentials):
    record = env.map_run_record_pool_manager.get_all()[-1]
    parameters = dict(env.stack[-1])
    _put_object(env, resource_runtime_part, state_credentials)
    details = env.stack[-1]["ResultWriterDetails"]
    s3 = boto_client_for(service="s3", region=resource_runtime_part.region, state_credentials=state_credentials)
    prefix = details["Key"].rsplit("/", 1)[0]
    files = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    for status in ("SUCCEEDED", "FAILED"):
        items = [r for r in record.__dict__.get("wm_results", []) if r["Status"] == status]
        if items:
            key = f"{prefix}/{status}_0.json"
            s3.put_object(Bucket=parameters["Bucket"], Key=key, Body=json.dumps(items).encode())
            files[status].append({"Key": key, "Size": len(json.dumps(items))})
    manifest = {"DestinationBucket": parameters["Bucket"], "MapRunArn": record.map_run_arn, "ResultFiles": files}
    s3.put_object(Bucket=parameters["Bucket"], Key=details["Key"], Body=json.dumps(manifest, indent=2).encode())


resource_eval_s3.ResourceEvalS3._handle_put_object = staticmethod(put_object)


def main() -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=PORT, verbose=False)
    server.start()
    config = urllib.request.Request(
        f"http://127.0.0.1:{PORT}/moto-api/config",
        data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
        method="POST",
    )
    urllib.request.urlopen(config, timeout=30).read()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
