"""The MCP server of ``claudine --headless``: the engine's tools over MCP stdio.

Two servers share one stream. A fast front, written on the standard library, answers
``initialize``, ``tools/list``, ``ping`` and (once the engine has started) ``tools/call``
within a fraction of a second of launch; the server built on the ``mcp`` SDK, which
takes over a second to import, takes the stream over once it has loaded
(docs/architecture.md, "The headless fast front"). Both publish the same tool
declarations and answer calls through the same handlers.

- front.py: the process entry (``run_stdio``): the home checked, the wire claimed, logging.
- fast_front.py: the front's line-level state machine and the hand-over to the SDK.
- frames.py: the screening of every line and the JSON-RPC error frames, in both phases.
- calls.py: which tool calls the front may take, and the one encoding of a result.
- home.py: whether the engine can keep its store and lock in the home, said in one line.
- sdk_bridge.py: the SDK server, and the bridge that feeds it the front's stream.
- tools.py: the tool declarations and argument checks (standard library only).
- handlers.py: what each tool does, through ``TaskService``.

Imports point from the front to the shared modules and, lazily, to sdk_bridge; nothing
imports the front back. Importing the package imports none of its modules.
"""
