"""`--scheduler ADDR` checked before a Dask `Client` exists: its form, then a bounded
handshake with whatever listens there.

Why: distributed's `Client(address, timeout=...)` raised on a malformed address from
inside its constructor, after which `Client.__del__` stalled for its close timeout and
printed a traceback; and where something answers that is not a Dask scheduler, `connect`
waits for the handshake reply without a deadline (distributed.comm.core.connect reads it
outside its timeout), so the run hung past every timeout.  Here the address is parsed
(`distributed.comm.addressing`), then one `identity` request is sent under
`asyncio.wait_for`, and the reply must come from a scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from harness.core.errors import UsageError, one_line

__all__ = ["SCHEMES", "check_address", "new_client", "probe_scheduler"]

#: the transports a `--scheduler` address may name (inproc is one process's own; ucx needs
#: a further package and is not offered)
SCHEMES = ("tcp", "tls", "ws", "wss")
_FORM = "tcp://HOST:PORT (port 1-65535)"


def check_address(address: str) -> str:
    """`address` with `tcp://` added when it has no scheme; a malformed one is a one-line
    `UsageError` naming it and the valid form."""
    from distributed.comm.addressing import parse_address, parse_host_port

    text = address.strip()
    if not text or any(not c.isprintable() for c in text):
        raise UsageError(f"bad --scheduler {address!r}: expected {_FORM}")
    if "://" not in text:
        text = f"tcp://{text}"
    scheme, location = parse_address(text)
    if scheme not in SCHEMES:
        raise UsageError(
            f"bad --scheduler {address!r}: unknown scheme '{scheme}'; choose from: {', '.join(SCHEMES)}"
        )
    try:
        host, port = parse_host_port(location)
    except (ValueError, TypeError):
        raise UsageError(f"bad --scheduler {address!r}: expected {_FORM}") from None
    if not host or not 1 <= int(port) <= 65535:
        raise UsageError(f"bad --scheduler {address!r}: expected {_FORM}")
    return text


def _connection_args(address: str) -> dict[str, Any]:
    """What a client passes to `connect` (Dask's security configuration); a `tls://` or
    `wss://` address without Dask's TLS settings is a one-line `UsageError`."""
    from distributed.security import Security

    args = Security().get_connection_args("client")
    if address.startswith(("tls://", "wss://")) and args.get("ssl_context") is None:
        raise UsageError(
            f"cannot run on the Dask scheduler at {address}: TLS needs Dask's TLS settings "
            "(distributed.comm.tls.ca-file, .client.cert, .client.key in the Dask configuration)"
        )
    return args


async def _identity(address: str, timeout: float, args: dict[str, Any]) -> Any:
    from distributed.comm.core import connect

    comm = await connect(address, timeout=timeout, **args)
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        comm.abort()


def probe_scheduler(address: str, timeout: float) -> None:
    """One `identity` request to `address`, all of it within `timeout` + 1 seconds (run on a
    thread of its own, so that a caller's event loop does not matter); no answer, or one
    that is not a Dask scheduler's, is a one-line `UsageError` saying what to do."""
    result: dict[str, Any] = {}
    args = _connection_args(address)

    def ask() -> None:
        try:
            # connect's own deadline first (a refused port: its OSError), then ours
            result["reply"] = asyncio.run(asyncio.wait_for(_identity(address, timeout, args), timeout + 1.0))
        except BaseException as exc:  # reported below, in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=ask, name="harness-scheduler-probe", daemon=True)
    thread.start()
    thread.join(timeout + 5.0)
    where = f"the Dask scheduler at {address}"
    if thread.is_alive() or isinstance(result.get("error"), asyncio.TimeoutError | TimeoutError):
        raise UsageError(
            f"cannot run on {where}: no Dask scheduler answered within {timeout:g} s "
            "(is the address right, and is `dask scheduler` running there?)"
        )
    if "error" in result:
        exc = result["error"]
        if isinstance(exc, OSError):  # refused, unreachable, closed: distributed's own words
            raise UsageError(f"cannot run on {where}: {one_line(exc)}")
        raise UsageError(
            f"cannot run on {where}: something answers there that is not a Dask scheduler ({one_line(exc)})"
        )
    reply = result.get("reply")
    kind = reply.get("type") if isinstance(reply, dict) else None
    if kind != "Scheduler":
        what = f"a Dask {kind.lower()}" if isinstance(kind, str) else "something that is not Dask"
        raise UsageError(
            f"cannot run on {where}: it is {what}, not a scheduler (give the scheduler's address)"
        )


def new_client(address: Any, *, timeout: float) -> Any:
    """`distributed.Client(address, timeout=timeout, set_as_default=False)` that closes
    itself when its constructor fails: a half-built client left to its `__del__` stalled for
    the close timeout and printed a traceback at exit (`Client.__del__` closes only when its
    loop was assigned).  The caller closes a client that was built."""
    from distributed import Client

    class ClosingClient(Client):
        def __init__(self) -> None:
            try:
                super().__init__(address, timeout=timeout, set_as_default=False)
            except BaseException:
                with contextlib.suppress(Exception):
                    self.close(timeout=timeout)
                raise

    return ClosingClient()
