"""The Leadterra sandbox: a stateful local stand-in for Leadterra's API.

`python -m leadterra_sandbox --port 8090 --sdrs 6` serves the /v1 API on 8090 and the control API
(/_control, no auth) on 8091. Tests, the demo and the benchmarks drive it through
`leadterra_sandbox.client.SandboxControl`. See docs/sandbox.md.
"""
