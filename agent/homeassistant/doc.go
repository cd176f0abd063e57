// Package homeassistant makes a rollcall host one Home Assistant device,
// through MQTT discovery on the broker the host already uses: every
// input and output of every service, built-in or external, becomes an
// entity with the device class and unit Home Assistant expects, driven
// and read over the topics the services already have.
//
// # The device config
//
// Home Assistant 2024.11 and later read a whole device from one retained
// message, its device discovery config:
//
//	<prefix>/device/<host>/config
//
// (prefix "homeassistant" by default; a host name with characters Home
// Assistant does not take there is made into an object id, see ObjectID).
// The payload uses Home Assistant's documented abbreviations:
//
//	{"dev":  {"ids":["<machine id>"],"name":"simpi","mf":"rollcall","mdl":"Raspberry Pi Zero 2 W Rev 1.0","sw":"1.2.3"},
//	 "o":    {"name":"rollcall","sw":"1.2.3","url":"https://github.com/rollcall/rollcall"},
//	 "cmps": {"gpio_lamp": {"p":"switch","name":"lamp","uniq_id":"<machine id>_gpio_lamp",
//	                        "stat_t":"simpi/gpio/output/lamp","cmd_t":"simpi/gpio/set/lamp",
//	                        "pl_on":"1","pl_off":"0","val_tpl":"…","avty":[…],"avty_mode":"all"},
//	          …},
//	 "qos":  1}
//
// The device is identified by the machine id, so a renamed host stays the
// same device; mdl is the board as /sys/firmware/devicetree/base/model
// names it, or "rollcall agent". Each component's key is
// <service>_<name> and its unique_id <machine id>_<service>_<name>: both
// stable across restarts, so Home Assistant keeps an entity's history and
// customizations.
//
// # What each interface becomes
//
//	bool output (gpio output)     switch: command "1"/"0" on the set topic, state from the output topic
//	bool input (gpio input)       binary_sensor: "1" on, "0" off
//	pwm output (gpio pwm)         light: brightness = duty in percent (brightness_scale 100) on the set
//	                              topic; turning on sends only the brightness, so it comes back at its last
//	                              duty; off sends OFF, which the set topic takes as 0
//	number output with min, max   number: set topic, min/max from the description, step for ~1000 steps
//	  (dac output)                (at least 0.001), device class from the unit
//	number input                  sensor: device_class and unit from Classify, state_class measurement
//	  (ain, dht22, sonar)
//	anything else                 plain sensor: no unit, no class (an unknown type from a third party)
//
// A PWM output is a light rather than a number because what a Pi's PWM
// pin drives is mostly a LED or a dimmer: one entity gives on/off, a
// brightness slider, and turning it back on at the duty it had; the duty
// stays exact to the percent (brightness_scale 100).
//
// Readings are read with ReadingTemplate, which takes the "value" of a
// JSON reading ({"value":18.5,"unit":"°C",…}) or a plain payload ("1"),
// so the same config works for every service and for third-party ones.
// Device classes come from the interface's mode and unit (Classify and
// the ClassTables): dht22's temperature in °C is temperature, its
// humidity in "%RH" is humidity in "%", sonar metres are distance, ain
// volts are voltage. A unit Home Assistant has no class for is kept
// without a class; a class is never sent with a unit its documentation
// does not list, since Home Assistant would refuse the entity.
//
// # Availability
//
// Each entity is available when both of these say so (availability_mode
// all):
//
//	<host>/status       "online"/"offline", the agent's will
//	<host>/services     the host's summary: the service's health is "ok"
//	                    (a built-in service; the runtime publishes health
//	                    there and in <host>/description, nowhere else)
//	<host>/<svc>/status "online"/"offline" (a program outside the agent)
//
// under the host's mqtt.topic_prefix when it has one (Info.TopicPrefix),
// as are the state and command topics, which come from the description.
// The discovery topic itself stays under Home Assistant's own prefix.
//
// An external service that goes offline keeps its entities, unavailable;
// only a cleared description removes them.
//
// # When it publishes
//
// The config is published retained, at every connection (a broker
// restarted without persistence forgot it), whenever the description
// changes what Home Assistant sees (a setup added or removed a pin, a
// program came or went; readings do not count), and when Home Assistant
// publishes "online" on <prefix>/status (it restarted). A component that
// disappears is removed as Home Assistant documents: the config is sent
// once with that component reduced to its platform ({"p":"switch"}), then
// again without it. The state directory's StateFile remembers the topic
// and the components last published, so that a pin removed while the
// agent was stopped is removed the same way at the next start, and so
// that an agent whose feature is turned off (enabled: false after having
// been on) removes the whole device at its next start by emptying the
// retained config, then forgets the file. With the feature off and no
// such file, nothing is published or subscribed under the prefix.
//
// Home Assistant can only remove an entity it has discovered since it
// started: one removed while Home Assistant was not running stays there,
// unavailable, until deleted in its interface.
//
// # A broker that refuses the prefix
//
// Configs are published at QoS 0: a broker whose ACL refuses the topic
// drops them, where some (mochi-mqtt, the embedded broker) disconnect an
// MQTT 3.1.1 client refused a QoS 1 publish. The publisher subscribes to
// its own config topic and expects the broker to deliver what it
// published back within EchoTimeout; when it does not, it logs once that
// the broker may be refusing <prefix>/# and goes on (the rest of the
// agent is not affected). If the connection ends twice in a row between
// a config published and its echo, as with a broker that disconnects
// clients for it, the publisher stops until the agent restarts rather
// than have the agent kicked at every reconnect.
package homeassistant
