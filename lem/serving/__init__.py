"""Serving scenario (`scenario=serving`): a real inference server of the backend, started and stopped by lem, under
a stated load from lem's own process, measured over a steady-state window.

- `server`: the server child process: its own process group, parent-death signals, log, health wait, stop; where it
  answers (a Unix socket, or a port on 127.0.0.1).
- `child`: what runs inside that child before the server: dies with lem, then hands over to the server's entry point.
- `launch`: per backend, the server's command and engine arguments (vLLM's OpenAI-compatible server; trtllm-serve).
- `trtllm`: trtllm-serve's command line and LLM-API options file from the config (pure; contract-tested, never run).
- `load`: the load generator (asyncio + aiohttp, streaming completions, Poisson or all-at-once arrivals).
- `window`: the steady-state window rule, applied while the load runs.
- `summary`: the serving figures over the window (pure functions).
- `engine`: the served model as the harness sees it (load, warm-up, the measured window), the only module here that
  brings in the energy layer.
"""
