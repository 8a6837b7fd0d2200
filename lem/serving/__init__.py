"""Serving scenario (`scenario=serving`): a real inference server of the backend, started and stopped by lem, under
a stated load from lem's own process, measured over a steady-state window.

- `server`: the server child process: its own process group, parent-death signals, log, health wait, stop.
- `child`: what runs inside that child before the server: dies with lem, then hands over to the server's entry point.
- `launch`: per backend, the server's command and engine arguments (vLLM's OpenAI-compatible server).
- `load`: the load generator (asyncio + aiohttp, streaming completions, Poisson or all-at-once arrivals).
- `window`: the steady-state window rule, applied while the load runs.
- `summary`: the serving figures over the window (pure functions).
- `engine`: the served model as the harness sees it (load, warm-up, the measured window), the only module here that
  brings in the energy layer.
"""
