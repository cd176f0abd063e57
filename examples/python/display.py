#!/usr/bin/python3
"""display: a rollcall service that is a program of its own.

The rollcall agent runs the built-in services of a host (gpio, ain, ...).
Any other program becomes a service of the same host by speaking the same
MQTT protocol, and sweeps and inventories then list it beside the built-in
ones. This one drives a small character display (simulated here: it logs
what it would show) and is meant to be copied.

What makes it a service, all under <host>/display/:

  description  retained: what it is, its outputs and its topics (a
               rollcall services.Description in JSON). The host's agent
               lists the service while its status is "online".
  status       retained "online" while connected. "offline" is the MQTT
               will, so the broker says it when the program dies, and the
               program says it itself on SIGTERM.

and on the report topic (/udp/report), where the agent's monitor publishes
one report per discovery probe, it answers each report for its own host
with one reply on the report's topic: the report's fields, then the
description's. A sweep knows from the host's summary that the service
exists and waits for that reply.

Requests follow the conventions of the built-in services:

  setup        {"lines": 2, "width": 16}: the display's geometry, checked
               field by field and kept across restarts. Missing fields take
               their defaults, or keep their values with "merge": true. An
               empty payload asks for the current setup.
  set/text     the text to show: plain text, or {"value": "..."}.
  control      estop (blank the display, refuse set and setup) or recover.
  get[/...]    republish the output; a plain get also returns the
               description.
  result       the answer to every request, echoing its "id":
               {"id":7,"op":"setup","status":"error","error":{"code":
               "invalid","message":"...","field":"lines"},"data":{...}}
  output/text  retained: the text shown, as a JSON string.

Requests that arrive retained (kept by the broker from the past) are
ignored: a stored request would otherwise replay itself over what was done
since, on every restart.

Run it next to an agent, on the same broker and under the same host name:

  /usr/bin/python3 display.py --host pizero2 --broker tcp://10.0.0.2:1883

It needs paho-mqtt 1.5 or later (Debian and Raspberry Pi OS:
apt-get install python3-paho-mqtt) and nothing else.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import signal
import socket
import sys
import tempfile
import threading
import time
from urllib.parse import urlsplit

try:
    import paho.mqtt.client as mqtt
except ImportError:
    sys.exit("display: the paho-mqtt module is missing: apt-get install python3-paho-mqtt, "
             "and run this with /usr/bin/python3")

SERVICE = "display"

# The largest request read; larger ones get too_large, as with the built-in
# services.
MAX_PAYLOAD = 64 * 1024
# Requests waiting for the worker; more are answered busy rather than queued
# without bound.
MAX_QUEUED_REQUESTS = 64
# Replies waiting out --delay. The report topic is shared by every host and
# anyone on the broker may publish there: a flood is dropped, not turned
# into threads.
MAX_PENDING_REPLIES = 64

# The setup's fields, their defaults and their (least, most) values: an
# HD44780 controller drives up to 4 lines of 40 characters.
DEFAULT_CONFIG = {"lines": 2, "width": 16}
LIMITS = {"lines": (1, 4), "width": (8, 40)}

# Error codes of a result, as in rollcall's services package.
MALFORMED = "malformed"    # not JSON, or not of the right shape
INVALID = "invalid"        # a field has a bad value
TOO_LARGE = "too_large"    # the payload is over MAX_PAYLOAD
NOT_FOUND = "not_found"    # no such output or request
HALTED = "halted"          # emergency-stopped: publish recover first
HARDWARE = "hardware"      # the display failed
STORAGE = "storage"        # the state file could not keep a change
BUSY = "busy"              # too many requests waiting; nothing was done
INTERNAL = "internal"      # a bug here


def problem(code: str, message: str, field: str = "") -> dict:
    """One problem with a request, as a result's "error" carries it."""
    p = {"code": code, "message": message}
    if field:
        p["field"] = field
    return p


class Refused(Exception):
    """A request that is answered with an error result: every problem found,
    the first one first."""

    def __init__(self, *problems: dict):
        super().__init__(problems[0]["message"])
        self.problems = list(problems)


def show(value) -> str:
    """A short rendering of a value for an error message."""
    s = json.dumps(value)
    return s if len(s) <= 40 else s[:40] + "…"


def _no_constant(name):
    raise ValueError("%s is not a JSON number" % name)


def parse_object(payload: bytes) -> dict:
    """The payload as a JSON object, or Refused naming what is wrong."""
    try:
        value = json.loads(payload.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise Refused(problem(MALFORMED, "not valid JSON: %s" % e))
    if not isinstance(value, dict):
        raise Refused(problem(MALFORMED, "the payload must be an object, not %s" % show(value)))
    return value


def unknown_fields(obj: dict, known) -> list:
    """A problem for every member of obj that is not known: a misspelt field
    is refused, never silently ignored."""
    fields = ", ".join(known)
    return [problem(MALFORMED, "unknown field %s (fields: %s)" % (show(k), fields), k[:64])
            for k in obj if k not in known]


def check_setup(obj: dict, current: dict) -> dict:
    """The configuration a setup asks for, or Refused with every problem."""
    problems = unknown_fields(obj, ("id", "merge") + tuple(LIMITS))
    merge = obj.get("merge", False)
    if not isinstance(merge, bool):
        problems.append(problem(MALFORMED, "must be true or false, not %s" % show(merge), "merge"))
    cfg = dict(current if merge is True else DEFAULT_CONFIG)
    for key, (low, high) in LIMITS.items():
        if key not in obj:
            continue
        value = obj[key]
        # bool is an int in Python; JSON's true is not a number of lines.
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(problem(MALFORMED, "must be a whole number, not %s" % show(value), key))
        elif not low <= value <= high:
            problems.append(problem(
                INVALID, "%d is out of range: %s is %d to %d" % (value, key, low, high), key))
        else:
            cfg[key] = value
    if problems:
        raise Refused(*problems)
    return cfg


def parse_text(payload: bytes, cfg: dict) -> str:
    """The text a set/text request asks for, checked against the display's
    geometry, or Refused."""
    try:
        raw = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(problem(MALFORMED, "the text is not UTF-8", "value"))
    if not raw.strip():
        # An empty message is what clearing a retained set looks like to a
        # live subscriber: blanking the display needs {"value": ""}.
        raise Refused(problem(
            MALFORMED, 'empty payload; send the text, or {"value": ""} to blank the display'))
    if raw.lstrip().startswith("{"):
        obj = parse_object(payload)
        problems = unknown_fields(obj, ("id", "value"))
        if "value" not in obj:
            problems.append(problem(MALFORMED, "required", "value"))
        elif not isinstance(obj["value"], str):
            problems.append(problem(
                MALFORMED, "must be a string, not %s" % show(obj["value"]), "value"))
        if problems:
            raise Refused(*problems)
        text = obj["value"]
    else:
        text = raw.rstrip("\r\n")  # mosquitto_pub -f leaves the file's newline
    text = text.replace("\r\n", "\n")
    lines = text.split("\n") if text else []
    if len(lines) > cfg["lines"]:
        raise Refused(problem(
            INVALID, "%d lines; the display has %d" % (len(lines), cfg["lines"]), "value"))
    for i, line in enumerate(lines, 1):
        if len(line) > cfg["width"]:
            raise Refused(problem(INVALID, "line %d is %d characters; the display is %d wide"
                                  % (i, len(line), cfg["width"]), "value"))
        if any(ord(c) < 0x20 or c == "\x7f" for c in line):
            raise Refused(problem(INVALID, "line %d holds a control character" % i, "value"))
    return text


def fit(text: str, cfg: dict) -> str:
    """text cut to a display of cfg's geometry, after a setup shrinks it."""
    lines = text.split("\n")[: cfg["lines"]] if text else []
    return "\n".join(line[: cfg["width"]] for line in lines)


def valid_topic(topic) -> bool:
    """Whether topic is one a client may publish to: 1-256 bytes, no
    wildcards, NUL or control characters, not a broker's $ topic."""
    if not isinstance(topic, str) or not topic or topic.startswith("$"):
        return False
    if len(topic.encode("utf-8")) > 256:
        return False
    return not any(c in "+#" or ord(c) < 0x20 or c == "\x7f" for c in topic)


def reserved(topic: str) -> bool:
    """Whether rollcall uses topic for state or requests (its
    services.Reserved): a report naming one as its reply topic is forged,
    and answering it would overwrite a status or feed a service a request."""
    levels = topic.split("/")
    if levels[0] == "rollcall":
        return True
    if len(levels) == 1:
        return False
    if len(levels) == 2:
        return levels[1] in ("status", "description", "services", "get")
    if levels[2] in ("setup", "control", "result", "description", "status"):
        return len(levels) == 3
    return levels[2] in ("set", "get", "input", "output")


def reserved_under(prefix: str, topic: str) -> bool:
    """Whether a reply topic is rollcall's, under the topic prefix or not
    (services.Prefix.Reserved): a probe to one cluster may not overwrite
    another's state on the same broker."""
    if reserved(topic):
        return True
    return bool(prefix) and topic.startswith(prefix + "/") and reserved(topic[len(prefix) + 1:])


def valid_prefix(prefix: str) -> bool:
    """Whether prefix can be mqtt.topic_prefix: topic levels, none empty,
    no wildcards or control characters, not starting with $."""
    return prefix == "" or (valid_topic(prefix) and "" not in prefix.split("/")
                            and len(prefix.encode("utf-8")) <= 64)


def valid_name(name: str) -> bool:
    """Whether name can be one level of a topic, as host names must."""
    return (valid_topic(name) and "/" not in name and len(name.encode("utf-8")) <= 64)


class Display:
    """The display itself. This one is simulated: it logs what it would
    show. A real one (an HD44780 on an I2C backpack, say) replaces show();
    an OSError it raises is answered as a hardware error."""

    def __init__(self, log: logging.Logger):
        self.log = log

    def show(self, text: str, cfg: dict) -> None:
        self.log.info("display %dx%d shows %r", cfg["lines"], cfg["width"], text)


class StateFile:
    """The setup and the halted flag, kept across restarts in one JSON file.
    The text is not kept: writing an SD card on every set wears it out, and
    a display that restarts blank says so on its output topic."""

    def __init__(self, path: str):
        self.path = path

    def load(self):
        """The saved state, or None when there is none yet. Raises OSError
        or ValueError when the file cannot be read or makes no sense."""
        try:
            with open(self.path, encoding="utf-8") as f:
                saved = json.load(f)
        except FileNotFoundError:
            return None
        if not isinstance(saved, dict) or not isinstance(saved.get("config"), dict):
            raise ValueError("no config object")
        try:
            cfg = check_setup(saved["config"], DEFAULT_CONFIG)
        except Refused as r:
            first = r.problems[0]
            raise ValueError("config: %s: %s" % (first.get("field", ""), first["message"]))
        return {"config": cfg, "halted": saved.get("halted") is True}

    def save(self, cfg: dict, halted: bool) -> None:
        """Replaces the file atomically: a power cut leaves the old one or
        the new one, never half of either."""
        directory = os.path.dirname(self.path) or "."
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".display-", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"config": cfg, "halted": halted}, f)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def new_client(client_id: str):
    """A paho client with the version 2 callbacks where paho has them
    (paho-mqtt 2.x, Debian trixie); 1.x (bookworm) has only the first
    version. The callbacks below take the arguments of both."""
    if hasattr(mqtt, "CallbackAPIVersion"):
        return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                           client_id=client_id, clean_session=True)
    return mqtt.Client(client_id=client_id, clean_session=True)


class DisplayService:
    """The service: its MQTT session, its requests and its replies.

    Three kinds of thread touch it: paho's network thread (connects,
    messages, which it only queues or schedules), the worker (requests, one
    at a time, so the display is driven by one thread), and timers (replies
    after --delay). lock guards what more than one of them reads."""

    def __init__(self, args, log: logging.Logger):
        self.args = args
        self.log = log
        self.host = args.host
        # Under the agent's mqtt.topic_prefix, when it has one.
        self.base = "/".join(l for l in (args.topic_prefix, args.host, SERVICE) if l)
        self.display = Display(log)
        self.state = StateFile(args.state) if args.state else None

        self.lock = threading.Lock()
        self.config = dict(DEFAULT_CONFIG)
        self.halted = False
        self.text = ""
        self.health = ""  # why the service is unwell, "" when it is not
        self.pending = set()  # replies waiting out the delay
        self.warned = {}  # warning key -> when it was last logged

        self.requests = queue.Queue(MAX_QUEUED_REQUESTS)
        self.client = new_client(args.client_id)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def topic(self, name: str) -> str:
        return "%s/%s" % (self.base, name)

    def warn(self, key: str, msg: str, *args) -> None:
        """Logs a warning at most once a minute per key: whoever publishes
        the messages it is about decides how many there are."""
        now = time.monotonic()
        with self.lock:
            last = self.warned.get(key)
            if last is not None and now - last < 60:
                return
            if len(self.warned) > 1000:
                self.warned.clear()
            self.warned[key] = now
        self.log.warning(msg, *args)

    # --- description and values ---

    def description(self) -> dict:
        """The service's description: what the host lists and a sweep
        shows. "external" marks it as a program of its own in every reply,
        so a sweep's inventory says so even without the host's summary."""
        with self.lock:
            cfg, halted, health = dict(self.config), self.halted, self.health
        d = {
            "function": SERVICE,
            "inputs": [],
            "outputs": [{
                "name": "text",
                "topic": self.topic("output/text"),
                "type": "string",
                "mode": "text",
                "set": self.topic("set/text"),
            }],
            "control": self.topic("control"),
            "setup": self.topic("setup"),
            "get": self.topic("get"),
            "result": self.topic("result"),
            "health": "error" if health else "ok",
            "external": True,
            # The service's own detail, which the host leaves out of its
            # listing: it changes with every setup, the listing should not.
            "state": {"halted": halted, "config": cfg},
        }
        if health:
            d["error"] = health
        return d

    def publish(self, topic: str, payload, retain: bool = False, qos: int = 1):
        if not isinstance(payload, (str, bytes)):
            payload = json.dumps(payload, separators=(",", ":"))
        return self.client.publish(topic, payload, qos=qos, retain=retain)

    def publish_description(self) -> None:
        self.publish(self.topic("description"), self.description(), retain=True)

    def publish_output(self) -> None:
        # As a JSON string, like every output's value is JSON (gpio's 1, 0
        # or 0.25): a blank display is "", whereas an empty retained
        # payload would delete the retained message instead of saying blank.
        with self.lock:
            text = self.text
        self.publish(self.topic("output/text"), json.dumps(text), retain=True)

    # --- the session ---

    def start(self) -> None:
        """Loads the saved state and connects; paho's network thread then
        reconnects by itself for as long as the program runs."""
        if self.state:
            try:
                saved = self.state.load()
            except (OSError, ValueError) as e:
                # Start with the defaults and say why in the description
                # until a setup replaces the file.
                self.health = ("state file %s unreadable (%s); running with the default setup"
                               % (self.state.path, e))
                self.log.error("%s", self.health)
            else:
                if saved:
                    self.config, self.halted = saved["config"], saved["halted"]
        self.log.info("setup %s%s", self.config, ", halted" if self.halted else "")

        threading.Thread(target=self._serve, name="requests", daemon=True).start()

        host, port, tls = self.args.broker_addr
        if tls:
            self.client.tls_set(ca_certs=self.args.ca)
        if self.args.username:
            self.client.username_pw_set(self.args.username,
                                        os.environ.get("ROLLCALL_MQTT_PASSWORD"))
        # The will says offline for a program that dies without a word:
        # killed, out of memory, or its Pi unplugged (after 1.5 keepalives).
        self.client.will_set(self.topic("status"), "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.log.info("connecting to %s:%d as %s/%s", host, port, self.host, SERVICE)
        self.client.connect_async(host, port, keepalive=self.args.keepalive)
        self.client.loop_start()

    def stop(self) -> None:
        """Says offline and disconnects. The description and the output stay
        retained: they are still true of the display, and the agent lists
        the service only while its status is online anyway."""
        self.log.info("stopping: status offline; description and output stay retained")
        if self.client.is_connected():
            info = self.publish(self.topic("status"), "offline", retain=True)
            deadline = time.monotonic() + 2
            while not info.is_published() and time.monotonic() < deadline:
                time.sleep(0.01)
            if not info.is_published():
                # No clean disconnect, which would cancel the will: the
                # broker publishes it once the process has closed the socket.
                self.log.warning("offline not acknowledged within 2s; leaving it to the will")
                self.client.loop_stop()
                return
        # A clean disconnect cancels the will: offline was said above, or,
        # when the connection was already down, by the broker.
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, rc, properties=None):
        # paho 1.x passes an int, 2.x a ReasonCode.
        if getattr(rc, "is_failure", rc != 0):
            why = mqtt.connack_string(rc) if isinstance(rc, int) else rc
            self.log.warning("the broker refused the connection: %s; retrying", why)
            return
        # Subscribe before saying online: the broker takes a connection's
        # packets in order, so a request sent on seeing "online" is never
        # lost. "get/#" matches "get" too.
        client.subscribe([
            (self.topic("setup"), 1),
            (self.topic("control"), 1),
            (self.topic("set/+"), 1),
            (self.topic("get/#"), 1),
            # The shared report topic and this host's own, so that it
            # answers whichever discovery.report_per_host says.
            (self.args.report_topic, 0),
            (self.args.report_topic + "/" + self.host, 0),
        ])
        # After every connect, not only the first: a broker restarted
        # without persistence has forgotten every retained message.
        self.publish_description()
        self.publish(self.topic("status"), "online", retain=True)
        self.publish_output()
        self.log.info("connected; online")

    def _on_disconnect(self, client, userdata, *args):
        # paho 1.x passes (rc), 2.x (flags, reason code, properties).
        rc = args[0] if len(args) == 1 else args[1]
        if getattr(rc, "is_failure", rc != 0):
            self.log.warning("connection lost (%s); reconnecting", rc)

    def _on_message(self, client, userdata, msg):
        # The network thread only sorts messages: requests go to the worker
        # and replies to timers, so that a slow display never holds up the
        # session's keepalives.
        if msg.topic in (self.args.report_topic, self.args.report_topic + "/" + self.host):
            if not msg.retain:
                self._on_report(msg.payload)
            return
        if msg.retain:
            self.warn(msg.topic, "ignored a retained request on %s: requests are never replayed; "
                      "clear it with: mosquitto_pub -r -n -t %s", msg.topic, msg.topic)
            return
        try:
            self.requests.put_nowait(msg)
        except queue.Full:
            busy = problem(BUSY, "%d requests are already waiting; try again" % MAX_QUEUED_REQUESTS)
            self.respond(self._op(msg.topic), request_id(msg.payload), problems=[busy])

    # --- discovery ---

    def _on_report(self, payload: bytes) -> None:
        """Schedules one reply to a report for this host. The monitor
        repeats a report for every retransmission of a probe the host has
        not fully answered yet; while a reply is waiting, repeats add none."""
        try:
            report = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return
        if not isinstance(report, dict) or report.get("hostname") != self.host:
            return  # another host's: every host's reports share the topic
        if self.args.machine and report.get("machine") != self.args.machine:
            return  # another machine under this host's name: a conflict
        if report.get("prefix", "") != self.args.topic_prefix:
            return  # a host of the same name in a cluster under another prefix
        topic, rid = report.get("topic"), report.get("id")
        # A monitor never asks for replies on a topic rollcall reserves or
        # on the report topic (discovery.CheckReplyTopic): such a report is
        # forged, and answering it would overwrite a status, feed a service
        # a request, or answer itself forever.
        if (not valid_topic(topic) or reserved_under(self.args.topic_prefix, topic)
                or topic == self.args.report_topic
                or topic.startswith(self.args.report_topic + "/")
                or isinstance(rid, bool) or not isinstance(rid, int)):
            self.warn("report", "ignored a report with reply topic %s and id %s: "
                      "not one a monitor sends", show(topic), show(rid))
            return
        key = (topic, rid, report.get("replyto"), report.get("machine"))
        with self.lock:
            if key in self.pending or len(self.pending) >= MAX_PENDING_REPLIES:
                return
            self.pending.add(key)
        if self.args.delay > 0:
            t = threading.Timer(self.args.delay, self._reply, (key, report))
            t.daemon = True
            t.start()
        else:
            self._reply(key, report)

    def _reply(self, key, report: dict) -> None:
        with self.lock:
            self.pending.discard(key)
        reply = dict(report)  # the report's fields, then the description's
        reply.update(self.description())
        del reply["state"]  # a sweep wants what is there, not its detail
        self.publish(report["topic"], reply, qos=0)

    # --- requests ---

    def _op(self, topic: str) -> str:
        rest = topic[len(self.base) + 1:]
        return rest.split("/", 1)[0]

    def _serve(self) -> None:
        while True:
            msg = self.requests.get()
            op = self._op(msg.topic)
            rid = request_id(msg.payload)
            try:
                if len(msg.payload) > MAX_PAYLOAD:
                    raise Refused(problem(TOO_LARGE, "payload of %d bytes is over the %d byte limit"
                                          % (len(msg.payload), MAX_PAYLOAD)))
                rest = msg.topic[len(self.base) + 1:]
                if op == "setup":
                    data = self.setup(msg.payload)
                elif op == "set":
                    data = self.set(rest[len("set/"):], msg.payload)
                elif op == "control":
                    data = self.control(msg.payload)
                else:
                    data = self.get(rest[len("get/"):] if rest.startswith("get/") else "")
            except Refused as r:
                self.respond(op, rid, problems=r.problems)
            except Exception as e:  # a bug: answer, log, keep serving
                self.log.exception("%s failed", msg.topic)
                self.respond(op, rid, problems=[problem(INTERNAL, str(e))])
            else:
                self.respond(op, rid, data=data)

    def respond(self, op: str, rid, data=None, problems=None) -> None:
        result = {} if rid is NO_ID else {"id": rid}
        result["op"] = op
        if problems:
            result["status"] = "error"
            result["error"] = problems[0]
            if len(problems) > 1:
                result["errors"] = problems
            with self.lock:
                result["data"] = {"halted": self.halted}
        else:
            result["status"] = "ok"
            if data is not None:
                result["data"] = data
        self.publish(self.topic("result"), result)

    def _halted(self) -> dict:
        return problem(HALTED, "%s is emergency-stopped (halted); publish recover to %s"
                       % (SERVICE, self.topic("control")))

    def _save(self, cfg: dict, halted: bool) -> None:
        if self.state:
            self.state.save(cfg, halted)

    def _show(self, text: str, cfg: dict) -> None:
        try:
            self.display.show(text, cfg)
        except OSError as e:
            raise Refused(problem(HARDWARE, "the display: %s" % e))
        with self.lock:
            self.text = text
        self.publish_output()

    def setup(self, payload: bytes) -> dict:
        with self.lock:
            current, halted = dict(self.config), self.halted
        if not payload.strip():
            return {"config": current, "halted": halted}
        cfg = check_setup(parse_object(payload), current)
        if halted:
            raise Refused(self._halted())
        # Saved before it is applied: an "ok" is a setup that survives a
        # power cut, and a setup that cannot be saved changes nothing.
        try:
            self._save(cfg, halted)
        except OSError as e:
            raise Refused(problem(STORAGE, "the setup could not be saved in %s (%s); "
                                  "nothing changed" % (self.state.path, e)))
        with self.lock:
            self.config = cfg
            self.health = ""
            text = self.text
        if fit(text, cfg) != text:
            self._show(fit(text, cfg), cfg)
        self.publish_description()
        self.log.info("setup applied: %s", cfg)
        return {"config": cfg, "halted": halted}

    def set(self, name: str, payload: bytes) -> dict:
        if name != "text":
            raise Refused(problem(
                NOT_FOUND, "no output named %s; the display has one, text" % show(name)))
        with self.lock:
            cfg, halted = dict(self.config), self.halted
        text = parse_text(payload, cfg)
        if halted:
            raise Refused(self._halted())
        self._show(text, cfg)
        return {"name": "text", "value": text}

    def control(self, payload: bytes) -> dict:
        try:
            cmd = payload.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise Refused(problem(MALFORMED, "not UTF-8"))
        if cmd.startswith("{"):
            obj = parse_object(payload)
            problems = unknown_fields(obj, ("id", "cmd"))
            if not isinstance(obj.get("cmd"), str):
                problems.append(problem(MALFORMED, "required, a string", "cmd"))
            if problems:
                raise Refused(*problems)
            cmd = obj["cmd"]
        cmd = cmd.lower()
        if cmd not in ("estop", "recover"):
            raise Refused(problem(
                INVALID, "unknown command %s (want estop or recover)" % show(cmd), "cmd"))
        halted = cmd == "estop"
        with self.lock:
            self.halted = halted
            cfg = dict(self.config)
        problems = []
        if halted:
            self.log.warning("emergency stop: display blanked")
            try:
                self._show("", cfg)
            except Refused as r:
                problems += r.problems
        try:
            self._save(cfg, halted)
        except OSError as e:
            problems.append(problem(
                STORAGE, "%s, but the halted flag could not be kept in %s (%s): "
                "a restart would not remember it" % (cmd, self.state.path, e)))
        self.publish_description()
        if problems:
            raise Refused(*problems)
        return {"cmd": cmd, "halted": halted}

    def get(self, rest: str) -> dict:
        kind, _, name = rest.partition("/")
        if kind not in ("", "input", "output"):
            raise Refused(problem(
                NOT_FOUND, "no %s; get, get/input[/<name>] or get/output[/<name>]" % show(kind)))
        if name and (kind == "input" or name != "text"):
            raise Refused(problem(NOT_FOUND, "no %s named %s" % (kind, show(name))))
        with self.lock:
            data = {"halted": self.halted}
            text = self.text
        if kind in ("", "output"):
            self.publish_output()
            data["outputs"] = {"text": text}
        if kind == "":
            data["description"] = self.description()
        return data


# NO_ID marks a request without an id, whose result has none either; a
# request's id may be any JSON value, null included.
NO_ID = object()


def request_id(payload: bytes):
    """The request's "id", echoed in its result, or NO_ID. A payload that is
    not a JSON object has none."""
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return NO_ID
    if not isinstance(obj, dict) or obj.get("id") is None:
        return NO_ID
    return obj["id"]


def default_state_path() -> str:
    """Where the setup is kept: systemd's StateDirectory= when it runs the
    program, else the user's XDG state directory."""
    base = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if not base:
        xdg = (os.environ.get("XDG_STATE_HOME")
               or os.path.join(os.path.expanduser("~"), ".local", "state"))
        base = os.path.join(xdg, "rollcall-display")
    return os.path.join(base, "display.json")


def broker_addr(broker: str, ca):
    """(host, port, tls) of a broker URL as the agent's mqtt.broker takes
    it: tcp://host:1883, ssl://host:8883, or host[:port]. Of a list (the
    nodes of a clustered broker) the first is used."""
    broker = broker.split(",")[0].strip()
    url = urlsplit(broker if "://" in broker else "tcp://" + broker)
    if url.scheme not in ("tcp", "mqtt", "ssl", "tls", "mqtts") or not url.hostname:
        raise ValueError("--broker %r: want tcp://host:port or ssl://host:port" % broker)
    tls = url.scheme in ("ssl", "tls", "mqtts") or bool(ca)
    try:
        port = url.port or (8883 if tls else 1883)
    except ValueError:
        raise ValueError("--broker %r: the port is not a number from 1 to 65535" % broker)
    return url.hostname, port, tls


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="A rollcall service outside the agent: a character display driven over MQTT.")
    # The defaults come from the environment variables the agent reads, so
    # one environment file can serve both.
    env = os.environ.get
    p.add_argument("--host", default=env("ROLLCALL_HOST") or socket.gethostname(),
                   help="the rollcall host name, the agent's host setting "
                        "(default: $ROLLCALL_HOST, else this machine's hostname, as the agent's)")
    p.add_argument("--broker", default=env("ROLLCALL_MQTT_BROKER") or "tcp://127.0.0.1:1883",
                   help="the agent's broker, tcp://host:port or ssl://host:port "
                        "(default: $ROLLCALL_MQTT_BROKER, else the agent's embedded broker, "
                        "tcp://127.0.0.1:1883)")
    p.add_argument("--client-id", help="MQTT client id (default: rollcall-<host>-display)")
    p.add_argument("--username", default=env("ROLLCALL_MQTT_USERNAME"),
                   help="MQTT user name (default: $ROLLCALL_MQTT_USERNAME); the password is "
                        "read from $ROLLCALL_MQTT_PASSWORD, never from the command line, "
                        "which every user can read")
    p.add_argument("--ca", help="CA certificate file: connect with TLS")
    p.add_argument("--keepalive", type=int, default=30,
                   help="seconds; the broker says offline 1.5 keepalives after the program "
                        "goes silent")
    p.add_argument("--topic-prefix", default=env("ROLLCALL_MQTT_TOPIC_PREFIX") or "",
                   help="the agent's mqtt.topic_prefix: the service's topics go under it "
                        "(default: $ROLLCALL_MQTT_TOPIC_PREFIX, else none)")
    p.add_argument("--report-topic", default="/udp/report",
                   help="the agents' discovery.report_topic")
    p.add_argument("--machine", default="",
                   help="answer only reports of this machine id (when two hosts share a name)")
    p.add_argument("--delay", type=float, default=0.0,
                   help="seconds to wait before answering a report, to try a slow service (0 to 5)")
    p.add_argument("--state", default=None,
                   help="file keeping the setup across restarts, '' for none "
                        "(default: $STATE_DIRECTORY/display.json, "
                        "else ~/.local/state/rollcall-display/display.json)")
    p.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    args = p.parse_args(argv)
    if not valid_name(args.host):
        p.error("--host %r: want one topic level: 1-64 bytes, no / + # or control characters, "
                "not starting with $" % args.host)
    if not valid_prefix(args.topic_prefix):
        p.error("--topic-prefix %r: want topic levels (site1, farm/north): no empty level, "
                "no + # or control characters, not starting with $, at most 64 bytes"
                % args.topic_prefix)
    if not valid_topic(args.report_topic):
        p.error("--report-topic %r is not a topic one can subscribe to without wildcards"
                % args.report_topic)
    if not 0 <= args.delay <= 5:
        p.error("--delay %g: want 0 to 5 seconds; a sweep waits 3s by default" % args.delay)
    try:
        args.broker_addr = broker_addr(args.broker, args.ca)
    except ValueError as e:
        p.error(str(e))
    if args.client_id is None:
        args.client_id = "rollcall-%s-%s" % (args.host, SERVICE)
    if args.state is None:
        args.state = default_state_path()
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s display: %(message)s")
    log = logging.getLogger("display")
    # SIGTERM (systemd's stop) and SIGINT are taken by sigwait below, not a
    # handler: blocked before any thread starts, every thread inherits the
    # mask and the main thread alone receives them.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    service = DisplayService(args, log)
    try:
        service.start()
    except OSError as e:  # a CA file that cannot be read, say
        log.error("%s", e)
        return 1
    sig = signal.sigwait({signal.SIGTERM, signal.SIGINT})
    log.info("%s", signal.Signals(sig).name)
    service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
