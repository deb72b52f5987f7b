"""Field deployment: real edge and central processes exchanging latents over MQTT.

- :mod:`~epic_zoo.deploy.export`: split a model into per-device encoder files
  and a central decoder file (a *bundle* with a manifest); load each part alone.
- :mod:`~epic_zoo.deploy.security`: per-device broker credentials and HMAC keys.
- :mod:`~epic_zoo.deploy.broker`: a mosquitto broker with passwords, ACLs and persistence.
- :mod:`~epic_zoo.deploy.transport`: topics, the paho-mqtt client, link shaping.
- :mod:`~epic_zoo.deploy.edge` / :mod:`~epic_zoo.deploy.central`: the two programs.
- :mod:`~epic_zoo.deploy.testbed`: broker + central + N edge processes on one
  machine, measured against the hardware simulator.

Command line: ``python -m epic_zoo.deploy --help`` (export, provision, broker,
edge, central, testbed). See ``epic_zoo/deploy/README.md``.
"""
