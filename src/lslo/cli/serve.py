"""``lslo serve``: a LibreTranslate-compatible HTTP server for every direction of a run."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from lslo.cli.evaluate import add_inference_arguments, inference_settings, positive_int
from lslo.errors import LSLoError

API_KEY_ENV = "LSLO_API_KEY"
# the registries' names, without importing the serve extra's libraries at parser time
DETECTOR_NAMES = ("lingua", "lingua-low", "langid", "langdetect")
SPLITTER_NAMES = ("sentencex", "pysbd", "lines")


class ServeError(LSLoError):
    pass


def _number_between(unit: str, high: float):
    """An argparse type: a float from 0 to ``high`` (in ``unit``), else a one-line error."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not 0 <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {unit} between 0 and {high:g}, got {text!r}")
        return value

    parse.__name__ = unit  # argparse names the type in its messages
    return parse


milliseconds = _number_between("milliseconds", 10_000)


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


seconds = _number_between("seconds", 3600)


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from lslo.serving.detect import DetectorError
        from lslo.serving.segment import SplitterError
    except ImportError as e:
        raise ServeError(f"lslo serve needs the serve extra ({e.name} is missing): in the lslo clone, run "
                         "pip install -e '.[serve]' (make install includes it)") from None
    from lslo.training import load_run

    if not 0 < args.port < 65536:
        raise ServeError(f"--port {args.port}: expected 1-65535")
    sock = _bind(args.host, args.port)  # before loading the model: a busy port fails in one line, at once
    cfg, model = load_run(args.run, checkpoint=args.checkpoint, device=args.device)
    inference = inference_settings(args, cfg, model)
    used = model.loaded_checkpoint
    label = used if used == args.checkpoint else f"{used}; the run has no '{args.checkpoint}' checkpoint"
    from lslo.cli.outputs import trained_directions

    trained = trained_directions(cfg) if used != "none" else None
    try:
        return _serve(args, cfg, model, inference, label, trained, uvicorn, sock)
    except (DetectorError, SplitterError) as e:
        sock.close()
        raise ServeError(str(e)) from None


def _serve(args, cfg, model, inference, label, trained, uvicorn, sock) -> int:
    from lslo.serving import Limits, create_app, service_for_model

    e = cfg.eval
    gen = {"num_beams": args.beam or e.beam, "max_new_tokens": args.max_new_tokens or e.max_new_tokens,
           "length_penalty": e.length_penalty, "engine": inference["engine"],
           "early_stopping": inference["early_stopping"]}
    api_key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV)
    service = service_for_model(
        model, list(cfg.lslo.codes), gen, api_key=api_key, policy=args.policy,
        limits=Limits(max_texts=args.batch_limit, max_chars=args.char_limit, max_segments=args.max_segments,
                      max_file_bytes=args.max_file_bytes),
        max_batch_tokens=args.max_batch_tokens, max_batch_segments=args.max_batch_segments,
        max_wait_ms=args.max_wait_ms, max_queue=args.max_queue, trim_interval_s=args.trim_interval,
        description=f"{args.run} ({label})", trained=trained, allow_same_language=args.allow_same_language,
        detector=None if args.detector == "none" else args.detector, splitter=args.splitter,
        req_limit=args.req_limit,
    )
    origins = [o.strip() for o in args.cors_origins.split(",") if o.strip()] if args.cors_origins else None
    app = create_app(service, cors_origins=origins)
    n = len(service.codes)
    unknown = getattr(service.detector, "unknown", [])
    if unknown:
        print(f"lslo serve: detector {args.detector} does not know {', '.join(unknown)}: texts in "
              f"{'it' if len(unknown) == 1 else 'them'} are never detected (name the source for those)",
              file=sys.stderr, flush=True)
    print(f"lslo serve: {args.run} ({label}), {n} languages, {n * (n - 1)} directions, "
          f"policy {args.policy}, beam {gen['num_beams']}, on http://{args.host}:{args.port}"
          + (" (API key required)" if api_key else ""), file=sys.stderr, flush=True)
    # uvicorn handles SIGTERM (stop accepting, finish in-flight requests, drain the batcher in the
    # lifespan) and then re-raises the signal to the handler that was there before it: a no-op here,
    # so a drained shutdown exits 0 instead of dying by the signal.
    signal.signal(signal.SIGTERM, lambda *_: None)
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level,
                            timeout_graceful_shutdown=args.drain_timeout, access_log=args.access_log)
    try:
        uvicorn.Server(config).run(sockets=[sock])  # the socket bound above: no second bind to fail
    finally:
        sock.close()
        print(f"lslo serve: stopped (http://{args.host}:{args.port})", file=sys.stderr, flush=True)
    return 0


def _bind(host: str, port: int):
    """A listening socket on host:port, or a one-line error naming them (a busy port, an unknown host)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise ServeError(f"--host {host}: cannot resolve it ({e.strerror}); use an address such as 127.0.0.1 "
                         "or 0.0.0.0") from None
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
    try:
        sock.bind(addr)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port} ({e.strerror}); is another server using it? pick "
                         "another --port") from None
    sock.set_inheritable(True)
    return sock


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="HTTP translation server: every direction, mixed-direction batching",
                       description="Serve a run over HTTP (LibreTranslate-compatible POST /translate, "
                                   "GET /languages, /health, /metrics, and a web page at /).")
    p.add_argument("run", help="run directory (or a run config file, with --checkpoint none)")
    p.add_argument("--checkpoint", default="best", choices=["best", "last", "none"])
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--api-key", help=f"require this key (default: ${API_KEY_ENV} when set)")
    p.add_argument("--device")
    p.add_argument("--beam", type=positive_int, help="beam size (default: eval.beam)")
    add_inference_arguments(p)
    p.add_argument("--max-new-tokens", type=positive_int, help="default: eval.max_new_tokens")
    p.add_argument("--policy", default="mixed", choices=["mixed", "direction", "single"],
                   help="batching: mixed directions (default), one direction per batch, or no batching")
    p.add_argument("--max-batch-tokens", type=positive_int, default=4096, help="source tokens per batch")
    p.add_argument("--max-batch-segments", type=positive_int, default=64,
                   help="segments per batch: the server's batch size (the run's eval.batch_size does not apply)")
    p.add_argument("--max-wait-ms", type=milliseconds, default=5.0, help="how long a batch waits for company")
    p.add_argument("--max-queue", type=positive_int, default=1024,
                   help="segments waiting at most; beyond, 503 with Retry-After")
    p.add_argument("--trim-interval", type=seconds, default=1.0,
                   help="after a batch, at most every this many seconds, give freed heap memory back to the OS "
                        "(glibc malloc_trim), so that a long-running server's resident memory does not creep up; "
                        "0: never; a no-op without glibc (see guides/serving.md in the documentation)")
    p.add_argument("--batch-limit", type=positive_int, default=64,
                   help="texts in one request's list q (LibreTranslate's --batch-limit)")
    p.add_argument("--char-limit", "--max-chars", dest="char_limit", type=positive_int, default=5000,
                   help="characters per text (LibreTranslate's --char-limit)")
    p.add_argument("--max-segments", type=positive_int, default=512,
                   help="sentences per request, after sentence splitting")
    p.add_argument("--max-file-bytes", type=positive_int, default=2 << 20, help="size of a file for /translate_file")
    p.add_argument("--detector", default="lingua", choices=[*DETECTOR_NAMES, "none"],
                   help="language identification for source 'auto' and /detect (default lingua, the most "
                        "accurate on the testbed; none: 'auto' is refused)")
    p.add_argument("--splitter", default="sentencex", choices=SPLITTER_NAMES,
                   help="sentence splitter for long texts (lines: split only at line breaks)")
    p.add_argument("--req-limit", type=non_negative_int, default=0,
                   help="requests per minute per API key or client address, beyond: 429 (0: no limit)")
    p.add_argument("--cors-origins", help="comma-separated origins browsers may call the API from ('*': any); "
                                          "default: no CORS headers")
    p.add_argument("--drain-timeout", type=positive_int, default=60,
                   help="seconds SIGTERM waits for queued requests to finish")
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.add_argument("--allow-same-language", action="store_true",
                   help="accept requests whose source is the target language (refused by default)")
    p.set_defaults(func=cmd_serve)
