package bgpspeaker

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// dialError says in words why a connection to a peer failed. password says whether the peer
// has an MD5 password: a router whose key differs (or that has none) drops the signed SYNs
// without a word, which looks exactly like a router that is not there.
func dialError(err error, peer netip.AddrPort, password bool) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("connection refused by %s: no BGP speaker listens there", peer)
	case errors.Is(err, syscall.ECONNRESET) && password:
		return fmt.Sprintf("connection reset by %s: check the MD5 password", peer)
	case errors.Is(err, syscall.ECONNRESET):
		return fmt.Sprintf("connection reset by %s", peer)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return fmt.Sprintf("no route to %s", peer)
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		if password {
			return fmt.Sprintf("no answer from %s (the router drops the TCP handshake: check the MD5 password)", peer)
		}
		return fmt.Sprintf("no answer from %s", peer)
	}
	return fmt.Sprintf("connecting to %s: %v", peer, err)
}

// notificationText names a NOTIFICATION's error (RFC 4271 6.x, RFC 4486, RFC 8538).
func notificationText(code, sub uint8) string {
	subs := map[uint8]map[uint8]string{
		bgp.BGP_ERROR_MESSAGE_HEADER_ERROR: {1: "connection not synchronized", 2: "bad message length", 3: "bad message type"},
		bgp.BGP_ERROR_OPEN_MESSAGE_ERROR: {1: "unsupported BGP version", 2: "bad peer AS", 3: "bad BGP identifier",
			4: "unsupported optional parameter", 6: "unacceptable hold time", 7: "unsupported capability", 11: "role mismatch"},
		bgp.BGP_ERROR_CEASE: {1: "maximum number of prefixes reached", 2: "administrative shutdown", 3: "peer de-configured",
			4: "administrative reset", 5: "connection rejected", 6: "other configuration change",
			7: "connection collision resolution", 8: "out of resources", 9: "hard reset", 10: "BFD down"},
	}
	codes := map[uint8]string{
		bgp.BGP_ERROR_MESSAGE_HEADER_ERROR: "message header error", bgp.BGP_ERROR_OPEN_MESSAGE_ERROR: "OPEN message error",
		bgp.BGP_ERROR_UPDATE_MESSAGE_ERROR: "UPDATE message error", bgp.BGP_ERROR_HOLD_TIMER_EXPIRED: "hold timer expired",
		bgp.BGP_ERROR_FSM_ERROR: "finite state machine error", bgp.BGP_ERROR_CEASE: "cease",
		bgp.BGP_ERROR_ROUTE_REFRESH_MESSAGE_ERROR: "ROUTE-REFRESH message error",
	}
	if s, ok := subs[code][sub]; ok {
		return s
	}
	if s, ok := codes[code]; ok {
		if sub != 0 {
			return fmt.Sprintf("%s (subcode %d)", s, sub)
		}
		return s
	}
	return fmt.Sprintf("error code %d subcode %d", code, sub)
}

// logEvent is what the speaker learns from one GoBGP log message about a peer.
type logEvent struct {
	addr netip.Addr
	err  string // non-empty: the peer's new LastError
}

// interpret turns GoBGP's log messages into peer errors. GoBGP v3 reports dial failures and
// notifications nowhere else: its API has no "last error".
func interpret(msg string, f log.Fields, port func(netip.Addr) (uint16, bool)) (logEvent, bool) {
	key, _ := f["Key"].(string)
	addr, err := netip.ParseAddr(key)
	if err != nil {
		return logEvent{}, false
	}
	p, password := port(addr)
	ap := netip.AddrPortFrom(addr, p)
	switch msg {
	case "failed to connect":
		e, _ := f["Error"].(error)
		if e == nil {
			return logEvent{}, false
		}
		return logEvent{addr, dialError(e, ap, password)}, true
	case "sent notification":
		if me, ok := f["Data"].(*bgp.MessageError); ok {
			text := notificationText(me.TypeCode, me.SubTypeCode)
			if me.Message != "" && me.Message != text {
				text += ": " + me.Message
			}
			return logEvent{addr, fmt.Sprintf("notification: %s (sent to %s)", text, addr)}, true
		}
		code, _ := f["Code"].(uint8)
		sub, _ := f["Subcode"].(uint8)
		return logEvent{addr, fmt.Sprintf("notification: %s (sent to %s)", notificationText(code, sub), addr)}, true
	case "received notification":
		code, _ := f["Code"].(uint8)
		sub, _ := f["Subcode"].(uint8)
		text := notificationText(code, sub)
		if r, _ := f["Communicated-Reason"].(string); r != "" {
			text += ": " + r
		}
		return logEvent{addr, fmt.Sprintf("notification: %s (from %s)", text, addr)}, true
	case "hold timer expired":
		return logEvent{addr, fmt.Sprintf("hold timer expired: nothing heard from %s within the hold time", addr)}, true
	case "Peer Down":
		// Only a reason no other message explains: notifications were reported above.
		reason := fmt.Sprint(f["Reason"])
		if reason == "read-failed" || reason == "write-failed" {
			return logEvent{addr, fmt.Sprintf("connection to %s lost (%s)", ap, reason)}, true
		}
	}
	return logEvent{}, false
}

// logger adapts GoBGP's logger: messages at Info and above go to Config.Log; messages about
// peers become their LastError through onEvent. Of the debug messages only "failed to connect"
// is read (GoBGP logs dial errors at debug level only), and none is passed on.
//
// GoBGP asks GetLevel before building most debug messages, one per UPDATE sent or received
// among them, but says nothing of the message it would build: the level is Debug only while
// a session is not established (dialing, set by the Speaker), when dial failures can happen.
type logger struct {
	out     func(msg string, keysAndValues ...any)
	onEvent func(msg string, f log.Fields)
	dialing atomic.Bool
}

func (l *logger) log(level, msg string, f log.Fields) {
	if l.onEvent != nil {
		l.onEvent(msg, f)
	}
	if l.out == nil {
		return
	}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	kv := []any{"level", level}
	for _, k := range keys {
		kv = append(kv, lowerCamel(k), f[k])
	}
	l.out("gobgp: "+msg, kv...)
}

// lowerCamel turns GoBGP's field names ("Key", "Communicated-Reason") into our key style.
func lowerCamel(k string) string {
	parts := strings.FieldsFunc(k, func(r rune) bool { return r == '-' || r == '_' })
	for i, p := range parts {
		if i == 0 {
			parts[i] = strings.ToLower(p[:1]) + p[1:]
		} else {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "")
}

func (l *logger) Panic(msg string, f log.Fields) { l.log("panic", msg, f); panic(msg) }
func (l *logger) Fatal(msg string, f log.Fields) { l.log("fatal", msg, f) }
func (l *logger) Error(msg string, f log.Fields) { l.log("error", msg, f) }
func (l *logger) Warn(msg string, f log.Fields)  { l.log("warn", msg, f) }
func (l *logger) Info(msg string, f log.Fields)  { l.log("info", msg, f) }
func (l *logger) SetLevel(log.LogLevel)          {}

func (l *logger) Debug(msg string, f log.Fields) {
	if msg == "failed to connect" && l.onEvent != nil {
		l.onEvent(msg, f)
	}
}

// GetLevel is Debug while a session is not established, so that GoBGP logs its dial failures,
// which the status needs; Info otherwise.
func (l *logger) GetLevel() log.LogLevel {
	if l.dialing.Load() {
		return log.DebugLevel
	}
	return log.InfoLevel
}
