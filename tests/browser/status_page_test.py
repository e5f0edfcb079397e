#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The status page in a real browser: headless Chromium, driven over the
DevTools protocol (python3-websocket), against a real turn-control with a
state Redis, all on 127.0.0.1 with free ports (no root needed).

Logs in through the page's form, then checks from the rendered DOM: the
listeners (UDP and TCP up), the local credential names (and no password
anywhere in the page), a registered TURN server shown reachable with a
round trip; an allocation made by a real client (turnctl probe --hold)
appears in "TURN relay usage" with its username, client and relay
addresses, and disappears once the client releases it (Refresh 0). No
JavaScript error may occur. Screenshots go to BUILD/meson-logs/:
status-page.png (with the allocation) and status-page-released.png.

    /usr/bin/python3 tests/browser/status_page_test.py BUILD_DIR
"""
import base64
import json
import os
import shutil
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
import dpturn_harness as h  # noqa: E402

try:
    import websocket  # python3-websocket
except ImportError:
    h.missing_tool_exit("python3-websocket (for /usr/bin/python3)")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if not CHROMIUM:
    h.missing_tool_exit("chromium")

DEADLINE = time.monotonic() + 80  # the whole test; meson's timeout is 90 s
FAILS = []


def check(what, ok, detail=""):
    print(("PASS: " if ok else "FAIL: ") + what + ("" if ok or not detail else f"\n      {detail}"), flush=True)
    if not ok:
        FAILS.append(what)
    return ok


class DevTools:
    """A minimal Chrome DevTools Protocol client for one page target."""

    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=10, suppress_origin=True)
        self.next_id = 0
        self.events = []

    def call(self, method, timeout_s=10, **params):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            self.ws.settimeout(max(0.1, end - time.monotonic()))
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)
        raise TimeoutError(f"{method}: no answer in {timeout_s} s")

    def js(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"page script failed: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, what, expression, timeout_s):
        """Polls a JS expression until it is truthy; returns its value (or None)."""
        end = min(time.monotonic() + timeout_s, DEADLINE)
        while time.monotonic() < end:
            try:
                v = self.js(expression)
            except RuntimeError:
                v = None  # the page is navigating
            if v:
                return v
            time.sleep(0.1)
        check(what, False, f"not true within {timeout_s} s: {expression}")
        return None

    def screenshot(self, path):
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"])
        with open(path, "wb") as f:
            f.write(data)
        return data


# The rows of a table as dicts of their cells' text, keyed by the cells' classes.
ROWS_JS = """JSON.stringify([...document.querySelectorAll('#%s tbody tr')].map(r => {
  const o = {id: r.dataset.id || '', text: r.innerText};
  for (const td of r.cells) if (td.className) o[td.className.split(' ').filter(c => c !== 'mono' && c !== 'num')[0]] = td.innerText;
  return o;
}))"""


def rows(dt, table):
    return json.loads(dt.js(ROWS_JS % table) or "[]")


def main():
    build = sys.argv[1]
    env = h.Harness(build, "browser")
    artifacts = os.path.join(build, "meson-logs")
    os.makedirs(artifacts, exist_ok=True)
    try:
        env.start_redis()
        env.start_turn_control()
        base = f"http://127.0.0.1:{env.admin_port}"
        h.log(f"turn-control on 127.0.0.1:{env.turn_port}, status page {base}/")
        st, _, body = env.admin("POST", "/api/v1/turn-servers",
                                {"serverAddress": f"turn:127.0.0.1:{env.turn_port}",
                                 "clientAddress": "turn:203.0.113.7:3478", "username": h.USER, "password": h.PASS,
                                 "type": "udp"})
        check("a TURN server is registered through the API", st == 201, body)
        st, _, body = env.admin("POST", "/api/v1/users", {"name": "carol", "password": "carols-secret-9"})
        check("a credential is added through the API", st == 201, body)

        profile = os.path.join(env.tmp, "chromium-profile")
        os.makedirs(profile)
        env.spawn("chromium", [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                               "--disable-background-networking", "--disable-component-update", "--disable-sync",
                               "--disable-extensions", "--disable-default-apps", "--mute-audio",
                               f"--user-data-dir={profile}", "--remote-debugging-address=127.0.0.1",
                               "--remote-debugging-port=0", "--window-size=1440,1000", "about:blank"],
                  start_new_session=True)
        port_file = os.path.join(profile, "DevToolsActivePort")
        for _ in range(300):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("chromium did not open its DevTools port in 15 s")
        devtools_port = int(open(port_file).read().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{devtools_port}/json/list", timeout=5) as r:
            targets = json.load(r)
        page = next(t for t in targets if t["type"] == "page")
        dt = DevTools(page["webSocketDebuggerUrl"])
        dt.call("Page.enable")
        dt.call("Runtime.enable")

        # Not logged in: the login form.
        dt.call("Page.navigate", url=base + "/")
        dt.wait_for("the login form is shown", "!!document.querySelector('form[action=\"/login\"] input#token')", 10)
        check("no status before login", dt.js("!document.getElementById('allocations')"))
        # Log in through the form, as a person would.
        dt.js(f"document.getElementById('token').value = {json.dumps(h.TOKEN)}; "
              "document.querySelector('form[action=\"/login\"]').submit(); true")
        dt.wait_for("after login the page polls the admin API",
                    "document.getElementById('allocations') && Number(document.body.dataset.polls || 0) >= 2", 15)

        lst = rows(dt, "listeners")
        for proto in ("UDP", "TCP"):
            check(f"listener {proto} 127.0.0.1:{env.turn_port} shown up",
                  any(r.get("transport") == proto and str(env.turn_port) in r["text"] and "up" in r["text"]
                      for r in lst), str(lst))
        users = json.loads(dt.js("JSON.stringify([...document.querySelectorAll('#users li')]"
                                 ".map(e => e.textContent + (e.classList.contains('local') ? ' (local)' : '')))"))
        check("credential names shown, the admin API's marked", sorted(users) == ["alice", "bob", "carol (local)"],
              str(users))
        page_text = dt.js("document.documentElement.outerHTML + document.body.innerText")
        check("no password in the page", all(p not in page_text for p in (h.PASS, "builder-1234", "carols-secret-9")))
        check("no allocation rows before the client comes", rows(dt, "allocations") == [], str(rows(dt, "allocations")))
        check("the empty state says so", dt.js("!document.getElementById('allocations-empty').hidden"))
        srv = dt.wait_for("the registered TURN server is shown reachable with a round trip",
                          "(() => { const r = document.querySelector('#turn-servers tr.turn-server');"
                          " return r && /reachable/.test(r.querySelector('.reachable').innerText) &&"
                          " /ms$/.test(r.querySelector('.rtt').innerText) ? r.innerText : ''; })()", 10)
        if srv:
            print("      server row: " + " | ".join(srv.split("\t")))

        # A real client allocates and holds the allocation, then releases it.
        hold_s = 8
        peer = f"127.0.0.1:{h.free_port()}"
        client = env.turnctl_background("probe", "probe", f"turn:127.0.0.1:{env.turn_port}", "-u", h.USER,
                                        "-p", h.PASS, "--hold", str(hold_s), "--peer", peer)
        t0 = time.monotonic()
        found = dt.wait_for("the allocation appears in TURN relay usage (with its channel)",
                            "[...document.querySelectorAll('#allocations tr.allocation[data-username=\"alice\"]')]"
                            ".some(r => r.querySelector('.channels').innerText.includes('0x4000'))", 6)
        shown = None
        if found:
            appeared = time.monotonic() - t0
            shown = rows(dt, "allocations")
            print(f"      appeared after {appeared:.1f} s: {shown}")
            check("exactly one allocation row", len(shown) == 1, str(shown))
            row = shown[0]
            api = json.loads(env.admin("GET", "/api/v1/allocations")[2])["allocations"]
            check("the API has the same allocation", len(api) == 1 and api[0]["id"] == row["id"], str(api))
            if api:
                a = api[0]
                check("row: username", row.get("username") == h.USER, str(row))
                check("row: client address (the probe's)", row.get("client") == a["client"] and
                      a["client"].startswith("127.0.0.1:"), f"{row.get('client')} vs {a['client']}")
                check("row: relay address in the relay range", row.get("relay") == a["relay_advertised"] and
                      a["relay_advertised"].startswith("127.0.0.1:"), f"{row.get('relay')} vs {a['relay_advertised']}")
                check("row: transport", row.get("transport") == "UDP", str(row))
                check("row: the peer's permission", row.get("peers") == "127.0.0.1", str(row))
                check("row: the channel", row.get("channels") == f"0x4000 \u2192 {peer}", str(row))
                check("row: traffic each way", "pkt" in row.get("to-peer", "") and "pkt" in row.get("to-client", ""),
                      str(row))
                check("row: remaining lifetime (granted 600 s)",
                      row.get("lifetime", "").startswith(("9m", "10m")), str(row))
            png = dt.screenshot(os.path.join(artifacts, "status-page.png"))
            check(f"screenshot saved: {os.path.join(artifacts, 'status-page.png')} ({len(png)} bytes)",
                  png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000)

        try:
            client.wait(timeout=hold_s + 10)
        except Exception:  # noqa: BLE001
            pass
        out = open(os.path.join(env.tmp, "probe.log")).read()
        print("      client: " + out.strip())
        check("the client allocated, held and released (Refresh 0)", client.returncode == 0 and
              out.startswith("reachable:"), out)
        if shown:
            check("the client's relay is the one the page showed", f"relay {shown[0].get('relay')}" in out, out)
        gone = dt.wait_for("the allocation disappears once released",
                           "document.querySelectorAll('#allocations tr.allocation').length === 0 &&"
                           " !document.getElementById('allocations-empty').hidden", 5)
        if gone:
            dt.screenshot(os.path.join(artifacts, "status-page-released.png"))
            check("and the page still polls (live)", dt.js("document.getElementById('conn').dataset.state") == "live")

        errors = [e for e in dt.events if e["method"] == "Runtime.exceptionThrown" or
                  (e["method"] == "Runtime.consoleAPICalled" and e["params"].get("type") == "error")]
        check("no JavaScript errors or console errors", not errors, json.dumps(errors)[:2000])
        try:
            dt.call("Browser.close", timeout_s=3)
        except Exception:  # noqa: BLE001 -- the connection closes with the browser
            pass
    except Exception as e:  # noqa: BLE001
        check("test ran", False, f"{type(e).__name__}: {e}")
    finally:
        if FAILS:
            env.failed = True
        env.close()


if __name__ == "__main__":
    start = time.monotonic()
    main()
    print(f"browser: {len(FAILS)} failed in {time.monotonic() - start:.1f} s")
    sys.exit(1 if FAILS else 0)
