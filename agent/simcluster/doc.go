// Package simcluster runs a rollcall cluster of many simulated hosts in one
// process, to measure how discovery scales without a thousand Raspberry
// Pis.
//
// # Hosts
//
// Each host is a real agent.Agent with Sim set: its own state directory
// (machine identity, description version), its own MQTT session to the
// broker and its own discovery monitor. Every monitor binds the same UDP
// port on all addresses, with SO_REUSEADDR, so one probe broadcast on the
// loopback interface (to 127.255.255.255) reaches all of them, as one
// broadcast reaches every Pi of a LAN. A sweep is the real cluster.Sweep,
// configured by Cluster.Client.
//
// # Brokers
//
// The hosts connect to a Broker, which also counts the messages it
// delivers: the embedded broker (agent/broker, mochi-mqtt), counted by a
// hook on every PUBLISH packet it writes to a client (StartEmbedded), or
// a mosquitto started for the run with a stock configuration, a listener
// and allow_anonymous and nothing else, counted from its
// $SYS/broker/publish/messages/sent (StartMosquitto). Mosquitto updates
// $SYS every 10 s (its default sys_interval), so a reading of it waits for
// the next update; bracket several sweeps with two readings.
//
// # Services outside the agent
//
// With Options.Listeners, each host also gets one plain MQTT client that
// subscribes to its host's reports the way a service outside the agent (a
// Python script) would: to the shared report topic, where it receives
// every host's report, or with Options.ReportPerHost to its own host's
// topic. The listeners only count what they receive (Cluster.Reports);
// they do not answer.
//
// # Costs
//
// A host holds three file descriptors with the embedded broker (the
// session's TCP connection, the broker's end of it, the monitor's UDP
// socket) and two with mosquitto; a listener adds two, or one. Start
// refuses a cluster the process's descriptor limit cannot hold (Go raises
// the soft limit to the hard one, ulimit -Hn). A simulated host takes
// about 0.6 MiB of memory, 0.9 MiB with its listener. Hosts start in
// parallel batches (Options.Parallel), so that a thousand are serving in
// a few seconds.
package simcluster
