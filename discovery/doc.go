// Package discovery finds the hosts of a rollcall cluster and what
// services each one runs.
//
// A sweep broadcasts a UDP probe asking "who are you". On every host, the
// agent's monitor receives it, adds who the host is and where the probe
// reached it, and publishes that as a report on MQTT. Each service of the
// host answers the report with a reply on the topic the probe named. The
// sweep collects the replies into an Inventory.
//
//	sweeper ──UDP broadcast──▶ monitor ──MQTT /udp/report──▶ services
//	   ▲  ▲                       │                              │
//	   │  └──── UDP ack (ver) ────┘                              │
//	   └──────────────── MQTT <probe topic> (one reply each) ◀───┘
//
// A probe may ask for an acknowledgement (Ack): the monitor then answers
// the sweeper directly over UDP, at once, with the version of its host's
// description. A sweeper that holds that version of the host's retained
// Summary (<host>/services, read at the start of every sweep) has all it
// needs of the host's built-in services, and does not wait for their MQTT
// replies, which a lossy link can hold back for TCP retransmission
// timeouts. The replies still go out, for every other listener. An
// acknowledgement is sent twice (AckCopies), since a lost one costs a
// retransmission of the probe; its copies together are never larger than
// the probe that asked for them, are sent only for a probe that passed
// every check, and with a key are signed, so a forged probe cannot
// amplify.
//
// # Probe
//
// A probe is one UDP datagram, sent to port 4747 (DefaultPort), holding
// one JSON object of at most 4096 bytes (MaxDatagram; larger datagrams
// are dropped unread):
//
//	{"cmd":"status","replyto":"pibot01","topic":"/stat/data","id":1241}
//
// Field by field:
//
//	cmd        string, required. "status", the only command.
//	ack        string, optional. Asks for an Ack carrying this token.
//	pad        string, optional, ignored: makes room for the Ack.
//	replyto    string, required. The sweeper's hostname. A valid topic
//	           level (services.ValidTopicName): 1-64 bytes, no '+', '#',
//	           '/', NUL or control characters, not starting with '$'.
//	topic      string, required. The MQTT topic services answer on,
//	           usually "/stat/data" (DefaultReplyTopic). A valid topic to
//	           publish to (services.ValidTopic): 1-256 bytes, no '+', '#',
//	           NUL or control characters, not starting with '$'.
//	id         integer, required. 0 to 2^63-1. Names this sweep: every
//	           retransmission carries the same id, and replies echo it.
//	v          integer, optional. Protocol version: 1 (absent means 1).
//	heard      list of strings, optional. The short ids of the hosts the
//	           sweep has fully heard (see ShortID: the first 8 lowercase
//	           hex digits of the host's machine id). A monitor that finds
//	           its own short id there stays silent.
//	jitter_ms  integer, optional. A monitor waits a uniformly random time
//	           in [0, jitter_ms) milliseconds, capped at 1000
//	           (MaxJitterMS), before publishing, so that many hosts do not
//	           hit the broker at once.
//	ts         integer, optional. The sweeper's clock, Unix milliseconds.
//	nonce      string, optional. Up to 64 hex digits, fresh each datagram.
//	kid        string, optional. The id of the key that signed the probe:
//	           1-64 of [A-Za-z0-9._-].
//	mac        string, optional. 32 hex digits: the signature (below).
//
// Unknown fields are ignored, so later versions can add fields. A known
// field with a bad value makes the whole probe rejected, with a
// *FieldError naming the field.
//
// # Report
//
// For each probe it accepts, a monitor publishes a report on "/udp/report"
// (DefaultReportTopic; configurable), or on "/udp/report/<host>" with
// report_per_host (below), at QoS 0, not retained:
//
//	{"hostname":"pibot01","replyto":"pibot01","cmd":"getstatus","ipaddr":"192.168.1.50",
//	 "topic":"/stat/data","extaddr":"173.95.174.120","id":1234,"machine":"<full machine id>","v":1}
//
//	hostname   this host's name.
//	replyto    copied from the probe.
//	cmd        "getstatus": the answer to the probe's "status".
//	ipaddr     this host's address on the interface the probe came in on,
//	           in the subnet of the probe's source: the address the
//	           sweeper can reach this host at. Not the probe's destination,
//	           which is a broadcast address.
//	topic      copied from the probe.
//	extaddr    this host's configured external address, "" when none.
//	id         copied from the probe.
//	machine    this host's stable identity (made once and kept in the
//	           agent's state directory, not /etc/machine-id, which cloned
//	           SD cards share). It tells hosts apart when two claim the
//	           same hostname.
//	v          protocol version, 1.
//	prefix     the host's topic prefix (mqtt.topic_prefix, below), absent
//	           when it has none.
//
// The report topic is shared by every host, so a client answers only
// the reports whose hostname (or machine) is its own host's. The agent's
// built-in services do not subscribe to it: the agent hands them its own
// monitor's report in process, so that a probe does not wake every agent
// of the cluster once per host.
//
// A client that subscribes to the shared topic still receives every
// host's report, to throw all but one away: with one such client on each
// of N hosts, a sweep costs the broker N² deliveries (a million for a
// thousand hosts). With report_per_host set (Config.ReportPerHost), each
// monitor publishes on the level below the report topic named after its
// host, "/udp/report/pibot01", and a client subscribes to its own host's
// topic only: N deliveries. Keep the shared topic, the default, while the
// clients that answer reports are few or already subscribe to it; set
// report_per_host on every host of a large cluster with services outside
// the agent. A client that subscribes to both "/udp/report" and
// "/udp/report/<host>" works with either setting. A reply topic at or
// below the report topic is refused (see CheckReplyTopic), and so is a
// report topic rollcall keeps for state or requests, whole or completed
// by a host name (see Config.CheckReportTopicFor).
//
// # Reply
//
// Each service answering a report publishes one reply on the report's
// topic: the report's fields, then the service's description, then the
// names of every service its host lists:
//
//	{"hostname":"pibot01", ... ,"machine":"...","v":1,
//	 "function":"gpio","inputs":[...],"outputs":[...],
//	 "control":"pibot01/gpio/control","setup":"pibot01/gpio/setup","get":"pibot01/gpio/get",
//	 "result":"pibot01/gpio/result","health":"ok","host_services":["ain","gpio"]}
//
//	function       the service's name. Required.
//	inputs,outputs its interfaces, as services.Interface.
//	control,setup,get,result
//	               its topics.
//	health         "ok", or "error" with error saying why.
//	external       true for a service outside the agent (below). A sweep
//	               takes such a service's entry from its own reply, so
//	               the reply says it.
//	host_services  every service the host lists, those outside the agent
//	               included. The sweep counts a host complete once each
//	               of them has replied. A client outside rollcall may
//	               leave it out.
//
// A sweep needs hostname, machine, function and id to count a reply, and
// counts only those whose prefix is its own (absent for none). Any
// MQTT client that subscribes to the report topic and publishes such a
// reply, a Python script say, is aggregated like a built-in service, but
// a sweep waits only for the services its hosts list: a client that does
// not announce itself (see Services outside the agent) is counted only if
// its reply beats the last one the sweep waits for. Replies are
// deduplicated on (machine, function), so answering twice does no harm.
//
// # Ack
//
//	{"ack":1241,"t":"9f86d081","host":"pibot01","m":"3f0c0a1b","ver":12,"mac":"…"}
//
// See Ack for each field. A probe asks for one with "ack" (8–32 hex
// digits, signed with the probe) and pads itself with "pad" (ignored) to
// ackProbeSize bytes, so the acknowledgement fits in what it sent. Every
// retransmission that does not list the host as heard is acknowledged
// again, even while the host's report waits out the probe's jitter.
//
// # Summary
//
// Every agent keeps, retained on <host>/services, the part of its
// description a sweep needs:
//
//	{"host":"pibot01","machine":"…","version":12,"ipaddrs":[…],
//	 "services":[{"function":"gpio","inputs":[…],"outputs":[…],"control":"…",…}]}
//
// # Services outside the agent
//
// A program that is a service of a host (a Python script, say) announces
// itself with a retained <host>/<service>/description (a
// services.Description whose function is <service>) and keeps
// <host>/<service>/status "online", retained, with "offline" as its MQTT
// will. It publishes both again after every reconnect (a broker restarted
// without persistence has forgotten them), and on a clean stop publishes
// "offline" itself, since a clean disconnect cancels the will. While its
// status is "online" and its description is readable, the host lists it
// in its description and summary, marked "external", without the
// description's state, and in the host_services of its replies, so a
// sweep waits for its own reply (within the timeout) and names it when it
// does not answer. Any other status, or an empty description, takes it off
// the list; a description under the name of a built-in service of the
// host is ignored.
//
// The program subscribes to the report topic, where the monitor publishes
// each report for the clients outside the agent, and answers every report
// whose hostname is its host, or whose machine is its host's when two
// machines share the name, with one reply as above, "external": true
// included. Until the sweep has heard every service of the host, each
// retransmission of the probe brings the same report again; one reply per
// report id is enough. Any client of the broker can publish on the report
// topic, and a monitor never names as the reply topic one that rollcall
// reserves (services.Reserved) or the report topic itself (see
// CheckReplyTopic): a report that does is a forgery, and answering it would
// overwrite a status or feed the program its own reply.
//
// Its requests under <host>/<service>/ follow the conventions of the
// built-in services (see package services): setup, set/<name>, control,
// get, results with the request's id on result, and retained values on
// input/<name> and output/<name>; requests that arrive retained are
// ignored. examples/python/display.py is such a program.
//
// # Topic prefix
//
// With mqtt.topic_prefix set (say "site1"), a host keeps its topics under
// the prefix: site1/<host>/services, site1/<host>/<service>/setup, and the
// sweep's inventory on site1/rollcall/inventory. The report topic and the
// probe's reply topic stay where they are, shared by every host on the
// broker, so a report names the host's prefix, every reply copies it, and
// a sweep counts only the replies (and reads only the summaries) under
// its own prefix: two clusters with different prefixes share a broker and
// a LAN without seeing each other. A monitor refuses a reply topic that
// is rollcall's with its prefix or without one (CheckReplyTopicUnder).
//
// # Loss and retransmission
//
// Broadcasts are not acknowledged, and Wi-Fi drops them often. A sweep
// retransmits the probe under the same id: three times at 20ms, then at
// doubling intervals (40, 80, 160ms ...), at most 8 transmissions in all,
// and stops as soon as every expected host is complete. Each
// retransmission lists in heard the hosts fully heard so far, which then
// stay silent. A monitor answers each (replyto, id) once; a
// retransmission that does not list it means its report or replies were
// lost, and it answers again. A sweep completes when every expected host
// (and at least ExpectCount hosts) answered with every service it listed
// (and a quiet period passed without a new reply, when one is set: none
// by default); with no one expected, when 300ms passed without a new
// reply; otherwise at the timeout (3s).
//
// # Authentication
//
// Anyone on the subnet can send a probe, and each probe makes every host
// and every service publish. With a shared key, the sweeper signs each
// datagram: it sets ts, a fresh nonce and kid, and sets mac to the first
// 16 bytes of HMAC-SHA256(key, canonical), in hex, where canonical is
// these fields joined by "\n" (no trailing newline):
//
//	rollcall-probe-v1
//	cmd
//	replyto
//	topic
//	id         decimal
//	ts         decimal
//	nonce
//	kid
//	heard      joined by ","
//	jitter_ms  decimal, 0 when absent
//
// A monitor with a keyring (key id → key; hold two during a rotation)
// drops probes that are unsigned, signed with an unknown key or wrongly,
// whose ts is more than 30s (DefaultReplayWindow) from its clock, or
// whose nonce it has seen within the window. Raspberry Pis have no
// real-time clock: until NTP has set the time after boot, a monitor
// rejects every signed probe as stale.
//
// Whether signed or not, a monitor drops probes from a source outside the
// subnets of the interface they arrived on (the RFC 6762 §11 on-link
// test), rate-limits each source and all sources together, and sends
// nothing back to a probe's source but the acknowledgement it asked for,
// once per probe id and never larger than the probe. It also drops probes whose topic
// is one rollcall keeps for state or requests, the report topic, outside
// the allowed prefixes (reply_prefixes, "/stat/" by default), or has a
// space or a dot, which nats-server refuses (CheckReplyTopic).
package discovery
