"""Tests of the monitor agent against real local processes and a local platform stand-in that
checks the agent's signatures and stores events once per (VM, epoch, sequence), as the
platform does. Run: python3 -m unittest discover -s agent/tests"""

import hashlib
import hmac
import importlib.machinery
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.dont_write_bytecode = True  # the agent has no .py name; keep the checkout clean
AGENT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "flotilla-agent")
_loader = importlib.machinery.SourceFileLoader("flotilla_agent", AGENT_PATH)
_spec = importlib.util.spec_from_loader("flotilla_agent", _loader)
agent_module = importlib.util.module_from_spec(_spec)
_loader.exec_module(agent_module)

CREDENTIAL = "test-credential-0123456789"
VM_ID = "vm-under-test"


class PlatformStandIn:
    """Accepts signed heartbeats and events; `fail_next_answers` stores events but answers 500
    (a lost answer), so the agent resends what is already stored."""

    def __init__(self, port=0):
        self.heartbeats = []
        self.events = []
        self.keys = set()
        self.duplicates = 0
        self.refused = 0
        self.fail_next_answers = 0
        self.lock = threading.Lock()
        self.server = None
        self.port = port
        self.start()

    def start(self):
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                message = b"\n".join([self.headers["X-Flotilla-Timestamp"].encode(), b"POST", self.path.encode(), body])
                expected = hmac.new(CREDENTIAL.encode(), message, hashlib.sha256).hexdigest()
                if self.headers["X-Flotilla-Agent"] != VM_ID or not hmac.compare_digest(expected, self.headers["X-Flotilla-Signature"]):
                    with stand_in.lock:
                        stand_in.refused += 1
                    self.answer(401, {})
                    return
                payload = json.loads(body)
                with stand_in.lock:
                    if self.path.endswith("/heartbeat"):
                        stand_in.heartbeats.append(payload)
                        answer = {}
                    else:
                        for event in payload["events"]:
                            key = (payload["vm"], event["epoch"], event["sequence"])
                            if key in stand_in.keys:
                                stand_in.duplicates += 1
                            else:
                                stand_in.keys.add(key)
                                stand_in.events.append(event)
                        answer = {"acknowledged": payload["events"][-1]["sequence"]}
                    if stand_in.fail_next_answers > 0:
                        stand_in.fail_next_answers -= 1
                        self.answer(500, {})
                        return
                self.answer(200, answer)

            def answer(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def kinds(self, service=None):
        with self.lock:
            return [e["kind"] for e in self.events if service is None or e["service"] == service]


def read_lines(path):
    with open(path) as file:
        return file.readlines()


def wait_for(condition, timeout, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    return condition()


class AgentTestCase(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.mkdtemp(prefix="flotilla-agent-test.")
        self.config_dir = os.path.join(self.directory, "etc")
        self.state_dir = os.path.join(self.directory, "state")
        self.bin_dir = os.path.join(self.directory, "bin")
        for path in (self.config_dir, self.bin_dir):
            os.makedirs(path)
        self.platform = PlatformStandIn()
        self.agent = None
        self.programs = []

    def tearDown(self):
        self.stop_agent()
        for name in self.programs:
            for pid in agent_module.ProcessTable().pids(name):
                os.kill(pid, signal.SIGKILL)
        self.platform.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def program(self, stem):
        """A long-running program with a name of its own (a link to sleep), so the test can find and kill it."""
        name = "flt%s%d" % (stem, os.getpid() % 10000)
        os.symlink(shutil.which("sleep"), os.path.join(self.bin_dir, name))
        self.programs.append(name)
        return name

    def start_command(self, name):
        return "%s 3600 >/dev/null 2>&1 &" % os.path.join(self.bin_dir, name)

    def write_config(self, services):
        config = {"platform_url": "http://127.0.0.1:%d" % self.platform.port, "vm_id": VM_ID,
                  "credential": CREDENTIAL, "heartbeat_seconds": 1, "services": services}
        agent_module.write_atomically(os.path.join(self.config_dir, "config.json"), json.dumps(config).encode())

    def start_agent(self):
        env = dict(os.environ, FLOTILLA_AGENT_CONFIG_DIR=self.config_dir, FLOTILLA_AGENT_STATE_DIR=self.state_dir)
        self.log = open(os.path.join(self.directory, "agent.log"), "ab")
        self.agent = subprocess.Popen([sys.executable, AGENT_PATH, "run"], env=env, stdout=self.log, stderr=self.log)

    def stop_agent(self):
        if self.agent is not None:
            self.agent.kill()
            self.agent.wait()
            self.agent = None
            self.log.close()

    def pids(self, name):
        return agent_module.ProcessTable().pids(name)


class RestartTests(AgentTestCase):
    def test_killed_process_is_restarted_within_two_seconds_and_reported(self):
        name = self.program("svc")
        self.write_config([{"name": "svc", "process": name, "start": self.start_command(name), "attempts": 3}])
        self.start_agent()
        self.assertTrue(wait_for(lambda: self.pids(name), 5), "the agent starts a service that is not running")
        self.assertTrue(wait_for(lambda: self.platform.kinds("svc"), 5))
        restart_times = []
        for _ in range(3):
            old = self.pids(name)
            os.kill(old[0], signal.SIGKILL)
            killed = time.time()
            self.assertTrue(wait_for(lambda: [p for p in self.pids(name) if p not in old], 3))
            restart_times.append(time.time() - killed)
            time.sleep(1.2)
        self.assertLess(max(restart_times), 2.0, restart_times)
        self.assertTrue(wait_for(lambda: len(self.platform.kinds("svc")) >= 4, 5))
        self.assertEqual(self.platform.kinds("svc"), ["restarted"] * 4)
        self.assertTrue(all(e["attempts"] == 1 and e["outage_started_at"] for e in self.platform.events))
        self.assertTrue(wait_for(lambda: self.platform.heartbeats[-1]["services"][0]["state"] == "running", 3))
        self.assertEqual(self.platform.heartbeats[-1]["services"][0]["restarts"], 4)

    def test_service_with_a_probe_killed_every_1_2_s_is_restarted_each_time(self):
        """50 kills a minute (issue 11): a service whose probe answers at once after its start is
        running again at once, so a kill 1.2 s later is a new outage, restarted at once, not a
        failed start that waits out the grace period and backs off towards giving up."""
        name = self.program("often")
        self.write_config([{"name": "often", "process": name, "start": self.start_command(name), "attempts": 3,
                            "grace_seconds": 10, "probe": {"tcp": "127.0.0.1:%d" % self.platform.port}}])
        subprocess.run(["/bin/sh", "-c", self.start_command(name)], check=True)
        self.start_agent()
        self.assertTrue(wait_for(lambda: self.platform.heartbeats, 5))
        kills, last = 0, 0.0
        deadline = time.time() + 15
        while kills < 8 and time.time() < deadline:
            running = self.pids(name)
            if running and time.time() - last >= 1.2:
                for pid in running:
                    os.kill(pid, signal.SIGKILL)
                kills, last = kills + 1, time.time()
            time.sleep(0.01)
        self.assertEqual(kills, 8, "killed 8 times in 15 s")
        self.assertTrue(wait_for(lambda: len(self.platform.kinds("often")) >= 8, 3))
        self.assertEqual(self.platform.kinds("often"), ["restarted"] * 8)
        self.assertTrue(all(e["attempts"] == 1 for e in self.platform.events))

    def test_failing_start_backs_off_gives_up_and_recovers_when_fixed_by_hand(self):
        name = self.program("fail")
        attempts_file = os.path.join(self.directory, "attempts")
        # The default re-probe interval (120 s): a service started by hand is seen at the next
        # check all the same, since its process is looked for every second.
        self.write_config([{"name": "broken", "process": name, "attempts": 4,
                            "start": "date +%%s.%%N >> %s; exit 1" % attempts_file}])
        self.start_agent()
        self.assertTrue(wait_for(lambda: "gave_up" in self.platform.kinds(), 20))
        with open(attempts_file) as file:
            times = [float(line) for line in file]
        self.assertEqual(len(times), 4, "exactly the attempt limit")
        gaps = [b - a for a, b in zip(times, times[1:])]
        # Backoff 1 s, 2 s, 4 s after the failed attempt is noticed (the next whole-second check).
        for gap, backoff in zip(gaps, (1, 2, 4)):
            self.assertGreaterEqual(gap, backoff, gaps)
            self.assertLessEqual(gap, backoff + 2.5, gaps)
        self.assertEqual(self.platform.events[-1]["attempts"], 4)
        time.sleep(3)
        self.assertEqual(len(read_lines(attempts_file)), 4, "no start after giving up")
        subprocess.run(["/bin/sh", "-c", self.start_command(name)], check=True)
        self.assertTrue(wait_for(lambda: "recovered_from_giving_up" in self.platform.kinds(), 5))
        self.assertEqual(self.platform.kinds(), ["gave_up", "recovered_from_giving_up"])

    def test_slow_starter_gets_its_grace_period(self):
        name = self.program("slow")
        starts = os.path.join(self.directory, "starts")
        command = "echo >> %s; (sleep 3; exec %s 3600) >/dev/null 2>&1 &" % (starts, os.path.join(self.bin_dir, name))
        self.write_config([{"name": "slow", "process": name, "start": command, "grace_seconds": 6}])
        self.start_agent()
        self.assertTrue(wait_for(lambda: self.platform.kinds("slow"), 10))
        self.assertEqual(self.platform.kinds("slow"), ["restarted"])
        self.assertEqual(len(read_lines(starts)), 1, "started once, not again during its grace period")

    def test_configuration_is_reloaded_without_restart(self):
        first, second = self.program("one"), self.program("two")
        self.write_config([{"name": "one", "process": first, "start": self.start_command(first)}])
        self.start_agent()
        self.assertTrue(wait_for(lambda: self.pids(first), 5))
        pid = self.agent.pid
        time.sleep(0.1)
        self.write_config([{"name": "one", "process": first, "start": self.start_command(first)},
                           {"name": "two", "process": second, "start": self.start_command(second)}])
        self.assertTrue(wait_for(lambda: self.pids(second), 5))
        self.assertEqual(self.agent.pid, pid)
        self.assertIsNone(self.agent.poll())

    def test_held_service_is_not_restarted_until_started(self):
        name = self.program("held")
        self.write_config([{"name": "held", "process": name, "start": self.start_command(name)}])
        self.start_agent()
        self.assertTrue(wait_for(lambda: self.pids(name), 5))
        environment = dict(os.environ, FLOTILLA_AGENT_CONFIG_DIR=self.config_dir, FLOTILLA_AGENT_STATE_DIR=self.state_dir)
        subprocess.run([sys.executable, AGENT_PATH, "stop", "held"], env=environment, check=True)
        self.assertEqual(self.pids(name), [])
        time.sleep(2.5)
        self.assertEqual(self.pids(name), [], "a stopped service stays stopped")
        self.assertEqual(self.platform.heartbeats[-1]["services"][0]["state"], "stopped")
        subprocess.run([sys.executable, AGENT_PATH, "start", "held"], env=environment, check=True)
        self.assertTrue(self.pids(name))
        self.assertTrue(wait_for(lambda: self.platform.heartbeats[-1]["services"][0]["state"] == "running", 4))


class QueueTests(AgentTestCase):
    def test_events_survive_an_outage_and_an_agent_restart_in_order_once(self):
        name = self.program("flap")
        self.write_config([{"name": "flap", "process": name, "start": self.start_command(name)}])
        self.start_agent()
        self.assertTrue(wait_for(lambda: self.platform.kinds("flap"), 5))
        port = self.platform.port
        self.platform.stop()
        for round_number in range(4):
            old = self.pids(name)
            for pid in old:
                os.kill(pid, signal.SIGKILL)
            self.assertTrue(wait_for(lambda: [p for p in self.pids(name) if p not in old], 3))
            time.sleep(1.2)
            if round_number == 1:  # the agent itself dies during the outage
                self.stop_agent()
                self.start_agent()
                time.sleep(1.5)
        queued = os.listdir(os.path.join(self.state_dir, "queue"))
        self.assertGreaterEqual(len(queued), 4, "events wait on disk")
        self.platform.port = port
        self.platform.fail_next_answers = 1  # the first answer is lost: the agent resends
        self.platform.start()
        self.assertTrue(wait_for(lambda: len(self.platform.events) >= 5, 10))
        time.sleep(1.5)
        sequences = [e["sequence"] for e in self.platform.events]
        self.assertEqual(sequences, list(range(1, len(sequences) + 1)), "in order, none lost, none doubled")
        self.assertGreaterEqual(self.platform.duplicates, 1, "the resend reached the platform and was deduplicated")
        self.assertEqual(os.listdir(os.path.join(self.state_dir, "queue")), [])


class ConfigurationTests(unittest.TestCase):
    def config(self, service):
        return {"platform_url": "https://p.example:8443", "vm_id": "v", "credential": "c", "services": [service]}

    def test_hostile_values_are_refused(self):
        hostile = [
            {"name": "a\nb", "process": "x", "start": "true"},
            {"name": "a", "process": "x", "pidfile": "/run/x.pid", "start": "true"},
            {"name": "a", "pidfile": "relative.pid", "start": "true"},
            {"name": "a", "process": "x"},
            {"name": "a", "process": "x", "start": "true", "attempts": "5; rm -rf /"},
            {"name": "a", "process": "x", "start": "true", "probe": {"tcp": "host"}},
            {"name": "a", "process": "x", "start": "true", "probe": {"http": "file:///etc/shadow"}},
            {"name": "a", "process": "x", "start": "true", "probe": {"tcp": "h:1", "command": "true"}},
        ]
        for service in hostile:
            with self.assertRaises(agent_module.ConfigError, msg=str(service)):
                agent_module.Config(self.config(service))

    def test_signature_matches_the_standard_library_hmac(self):
        for key in (b"", b"k", b"x" * 64, b"y" * 100):
            for message in (b"", b"1790000000\nPOST\n/api/v1/agent/heartbeat\n{}"):
                self.assertEqual(agent_module.hmac_sha256(key, message), hmac.new(key, message, hashlib.sha256).hexdigest())

    def test_names_never_reach_a_shell(self):
        directory = tempfile.mkdtemp()
        marker = os.path.join(directory, "pwned")
        spec = agent_module.ServiceSpec({"name": "$(touch %s)" % marker, "process": "$(touch %s)" % marker,
                                         "start": "true"})
        service = agent_module.Service(spec, agent=None)
        self.assertFalse(service.alive(agent_module.ProcessTable()))
        self.assertFalse(os.path.exists(marker))
        shutil.rmtree(directory)

    def test_install_adds_the_boot_hook_once_before_exit(self):
        root = tempfile.mkdtemp()
        os.makedirs(os.path.join(root, "etc"))
        with open(os.path.join(root, "etc/rc.local"), "w") as file:
            file.write("#!/bin/sh -e\nsomething\nexit 0\n")
        self.assertEqual(agent_module.install(root), "rc.local")
        agent_module.install(root)
        text = "".join(read_lines(os.path.join(root, "etc/rc.local")))
        self.assertEqual(text.count("flotilla-agent: begin"), 1)
        self.assertLess(text.index("flotilla-agent run"), text.index("exit 0"))
        self.assertTrue(os.access(os.path.join(root, "etc/rc.local"), os.X_OK))
        shutil.rmtree(root)


if __name__ == "__main__":
    unittest.main()
