#!/usr/bin/env python3
"""A WHEP player built on GStreamer's webrtcbin, independent of the project's own WebRTC code.

It offers receive-only H.264 video and Opus audio, waits for ICE gathering to finish so the offer carries
its candidates, POSTs the offer to the WHEP endpoint, applies the answer, decodes both streams with
decodebin and counts decoded video frames of the expected size and decoded audio buffers. It prints one
JSON line and exits 0 only when at least --min-frames frames and some audio arrived within --timeout
seconds of the POST. The session is DELETEd at the end either way.

Needs python3-gi, gir1.2-gstreamer-1.0, gir1.2-gst-plugins-bad-1.0, gstreamer1.0-plugins-{good,bad},
gstreamer1.0-nice and gstreamer1.0-libav (avdec_h264). `--check` only tests that all of it is there.
"""

import argparse
import json
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

try:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstSdp", "1.0")
    gi.require_version("GstWebRTC", "1.0")
    from gi.repository import GLib, Gst, GstSdp, GstWebRTC
except (ImportError, ValueError) as e:
    print(json.dumps({"ok": False, "missing": f"GStreamer GI bindings: {e}"}))
    sys.exit(2)

ELEMENTS = [
    "webrtcbin",
    "nicesrc",
    "dtlssrtpdec",
    "rtph264depay",
    "rtpopusdepay",
    "decodebin",
    "avdec_h264",
    "opusdec",
    "fakesink",
]

# What a browser offers: without packetization-mode=1 an answerer may only send single NAL units, and a
# 512x342 keyframe does not fit one RTP packet.
VIDEO_CAPS = (
    "application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,payload=102,"
    "packetization-mode=(string)1,profile-level-id=(string)42e01f,"
    "level-asymmetry-allowed=(string)1"
)
AUDIO_CAPS = (
    "application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,payload=111,"
    "encoding-params=(string)2"
)


def now():
    return time.monotonic()


class Player:
    def __init__(self, args):
        self.args = args
        self.loop = GLib.MainLoop()
        self.lock = threading.Lock()
        self.result = {
            "ok": False,
            "frames": 0,
            "other_frames": 0,
            "width": 0,
            "height": 0,
            "audio_buffers": 0,
            "first_frame_ms": None,
            "first_audio_ms": None,
            "elapsed_ms": None,
            "gather_ms": None,
            "post_status": None,
            "location": None,
            "delete_status": None,
            "ice_state": None,
            "decoders": [],
            "error": None,
        }
        self.t_post = None
        self.location = None
        self.candidates = []
        self.t_start = now()

        self.pipe = Gst.Pipeline.new("whep")
        self.webrtc = Gst.ElementFactory.make("webrtcbin", "recv")
        self.webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        self.pipe.add(self.webrtc)
        for caps in (VIDEO_CAPS, AUDIO_CAPS):
            self.webrtc.emit(
                "add-transceiver",
                GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY,
                Gst.Caps.from_string(caps),
            )
        self.webrtc.connect("on-negotiation-needed", self.on_negotiation_needed)
        self.webrtc.connect("on-ice-candidate", self.on_ice_candidate)
        self.webrtc.connect("notify::ice-gathering-state", self.on_gathering)
        self.webrtc.connect("notify::ice-connection-state", self.on_ice_state)
        self.webrtc.connect("pad-added", self.on_webrtc_pad)
        bus = self.pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self.on_bus_error)
        self.posted = False

    # -- signalling ------------------------------------------------------------------------------

    def on_negotiation_needed(self, _element):
        promise = Gst.Promise.new_with_change_func(self.on_offer_created, None)
        self.webrtc.emit("create-offer", None, promise)

    def on_offer_created(self, promise, _data):
        promise.wait()
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply else None
        if offer is None:
            GLib.idle_add(self.fail, "webrtcbin made no offer")
            return
        self.webrtc.emit("set-local-description", offer, Gst.Promise.new())
        # Gathering normally completes in well under a second on a LAN; post what there is after 3 s.
        GLib.timeout_add(3000, self.post_offer)

    def on_ice_candidate(self, _element, mline, candidate):
        self.candidates.append((mline, candidate))

    def on_gathering(self, element, _pspec):
        if element.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE:
            GLib.idle_add(self.post_offer)

    def on_ice_state(self, element, _pspec):
        state = element.get_property("ice-connection-state")
        self.result["ice_state"] = state.value_nick
        if state == GstWebRTC.WebRTCICEConnectionState.FAILED:
            GLib.idle_add(self.fail, "ICE failed")

    def offer_text(self):
        sdp = self.webrtc.get_property("local-description").sdp.as_text()
        if "a=candidate:" in sdp:
            return sdp
        # Older webrtcbin leaves gathered candidates out of the local description: add them.
        lines = sdp.replace("\r\n", "\n").rstrip("\n").split("\n")
        out, mline = [], -1

        def flush(index):
            out.extend(f"a={c}" for m, c in self.candidates if m == index)

        for line in lines:
            if line.startswith("m="):
                flush(mline)
                mline += 1
            out.append(line)
        flush(mline)
        return "\r\n".join(out) + "\r\n"

    def request(self, method, url, body=None, content_type=None):
        req = urllib.request.Request(url, data=body, method=method)
        if content_type:
            req.add_header("Content-Type", content_type)
        if self.args.token:
            req.add_header("Authorization", f"Bearer {self.args.token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.headers, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode(errors="replace")

    def post_offer(self):
        if self.posted:
            return False
        self.posted = True
        offer = self.offer_text()
        self.t_post = now()
        self.result["gather_ms"] = round((self.t_post - self.t_start) * 1000)
        try:
            status, headers, body = self.request(
                "POST", self.args.url, offer.encode(), "application/sdp"
            )
        except OSError as e:
            self.fail(f"POST {self.args.url}: {e}")
            return False
        self.result["post_status"] = status
        if status != 201:
            self.fail(f"POST answered {status}: {body.strip()[:300]}")
            return False
        location = headers.get("Location")
        if location:
            self.location = urllib.parse.urljoin(self.args.url, location)
            self.result["location"] = location
        ok, sdp = GstSdp.SDPMessage.new_from_text(body)
        if ok != GstSdp.SDPResult.OK:
            self.fail("the answer is not SDP")
            return False
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, sdp)
        self.webrtc.emit("set-remote-description", answer, Gst.Promise.new())
        GLib.timeout_add(50, self.check)
        return False

    # -- media -----------------------------------------------------------------------------------

    def on_webrtc_pad(self, _element, pad):
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        decode = Gst.ElementFactory.make("decodebin")
        decode.connect("pad-added", self.on_decoded_pad)
        decode.connect("element-added", self.on_decoder_added)
        self.pipe.add(decode)
        decode.sync_state_with_parent()
        pad.link(decode.get_static_pad("sink"))

    def on_decoder_added(self, _bin, element):
        factory = element.get_factory()
        if factory and "Decoder" in (factory.get_metadata("klass") or ""):
            self.result["decoders"].append(factory.get_name())

    def on_decoded_pad(self, _decode, pad):
        caps = pad.get_current_caps() or pad.query_caps(None)
        name = caps.get_structure(0).get_name()
        sink = Gst.ElementFactory.make("fakesink")
        sink.set_property("sync", False)
        sink.set_property("async", False)
        self.pipe.add(sink)
        sink.sync_state_with_parent()
        pad.link(sink.get_static_pad("sink"))
        if name.startswith("video/"):
            pad.add_probe(Gst.PadProbeType.BUFFER, self.on_video_buffer)
        elif name.startswith("audio/"):
            pad.add_probe(Gst.PadProbeType.BUFFER, self.on_audio_buffer)

    def on_video_buffer(self, pad, _info):
        s = pad.get_current_caps().get_structure(0)
        w, h = s.get_int("width")[1], s.get_int("height")[1]
        with self.lock:
            r = self.result
            r["width"], r["height"] = w, h
            if (w, h) == (self.args.width, self.args.height):
                r["frames"] += 1
                if r["first_frame_ms"] is None:
                    r["first_frame_ms"] = round((now() - self.t_post) * 1000)
            else:
                r["other_frames"] += 1
        return Gst.PadProbeReturn.OK

    def on_audio_buffer(self, _pad, _info):
        with self.lock:
            self.result["audio_buffers"] += 1
            if self.result["first_audio_ms"] is None:
                self.result["first_audio_ms"] = round((now() - self.t_post) * 1000)
        return Gst.PadProbeReturn.OK

    # -- outcome ---------------------------------------------------------------------------------

    def check(self):
        with self.lock:
            done = (
                self.result["frames"] >= self.args.min_frames
                and self.result["audio_buffers"] > 0
            )
        if done:
            self.finish(True)
            return False
        if now() - self.t_post > self.args.timeout:
            self.fail(f"fewer than {self.args.min_frames} frames or no audio in {self.args.timeout} s")
            return False
        return True

    def on_bus_error(self, _bus, msg):
        err, debug = msg.parse_error()
        self.fail(f"{msg.src.get_name()}: {err.message} ({debug})")

    def fail(self, why):
        if self.result["error"] is None:
            self.result["error"] = why
        self.finish(False)
        return False

    def finish(self, ok):
        if not self.loop.is_running():
            return
        with self.lock:
            self.result["ok"] = ok
            if self.t_post is not None:
                self.result["elapsed_ms"] = round((now() - self.t_post) * 1000)
        self.loop.quit()

    def run(self):
        self.pipe.set_state(Gst.State.PLAYING)
        # A hard stop whatever happens: gathering, the POST and the timeout itself.
        GLib.timeout_add(int((self.args.timeout + 10) * 1000), self.fail, "no outcome in time")
        self.loop.run()
        if self.location:
            try:
                self.result["delete_status"] = self.request("DELETE", self.location)[0]
            except OSError as e:
                self.result["delete_status"] = str(e)
        self.pipe.set_state(Gst.State.NULL)
        with self.lock:
            return dict(self.result)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("url", nargs="?", help="the WHEP endpoint, e.g. http://127.0.0.1:8080/whep")
    p.add_argument("token", nargs="?", default=None, help="Bearer token, if the server wants one")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds after the POST (15)")
    p.add_argument("--min-frames", type=int, default=60, help="decoded frames needed (60)")
    p.add_argument("--width", type=int, default=512)
    p.add_argument("--height", type=int, default=342)
    p.add_argument("--check", action="store_true", help="only check that GStreamer is usable")
    args = p.parse_args()

    Gst.init(None)
    missing = [e for e in ELEMENTS if Gst.ElementFactory.find(e) is None]
    if missing:
        print(json.dumps({"ok": False, "missing": "GStreamer elements: " + " ".join(missing)}))
        sys.exit(2)
    if args.check:
        print(json.dumps({"ok": True, "gstreamer": Gst.version_string()}))
        return
    if not args.url:
        p.error("the WHEP URL is required")
    result = Player(args).run()
    print(json.dumps(result), flush=True)
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
