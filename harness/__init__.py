"""gatebench's harness: plans, runs and records load tests, then analyses the results.

The orchestrator side (cli, plan, runner, servers, sampler) never imports locust; only
``locust_ext`` and ``probe`` run inside locust-importing subprocesses.
"""

__version__ = "0.1.0"
