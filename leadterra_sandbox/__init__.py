"""The Leadterra sandbox: a stateful local stand-in for Leadterra's API.

`python -m leadterra_sandbox --port 8090 --sdrs 6` serves the /v1 API on 8090 and the control API
(/_control, no auth) on 8091. Tests, the demo and the benchmarks drive it through
`leadterra_sandbox.client.SandboxControl`, or start it with `leadterra_sandbox.process`. It
imports nothing from the service (`worker`, `config`). See docs/sandbox.md.

Modules: `__main__` (command line), `server` (options, both listeners, outages), `app` and
`routes` (the /v1 API) over `actions` (its state changes), `control` (the control API),
`seeding` (seed JSON into records), `state`, `records`, `world`, `clock`, `calls` (the call
log), `faults`, `sender` and `sender_spec` (the webhook sender), `errors`, `responses`, `logs`,
and for callers `client` (`SandboxControl`) and `process` (`SandboxProcess`).
"""
