// record.go produces and checks the SPDY/3.1 fixtures of skiff-streaming's spdy module with
// github.com/moby/spdystream, the implementation kubectl, client-go and the kubelet use.
//
// The Rust tests stand on the files this program wrote; Go is needed only to refresh or
// re-check them. With Debian's golang-go and golang-github-moby-spdystream-dev installed:
//
//	cd crates/skiff-streaming/testdata/spdy
//	export GO111MODULE=off GOPATH=/usr/share/gocode
//	go run record.go record .              # rewrite the go-*.bin fixtures
//	go run record.go verify rust-frames.bin # decode what the Rust encoder wrote, check every field
//	go run record.go client /tmp/spdy.sock  # drive a Rust server (the ignored interop test)
//	go run record.go server /tmp/spdy.sock  # serve a Rust client (the ignored interop test)
//
// Header maps are Go maps, so a fixture holding several headers may come out in another order
// each run; the Rust tests compare decoded fields, never those compressed bytes.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/ioutil"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/moby/spdystream"
	"github.com/moby/spdystream/spdy"
)

func main() {
	if len(os.Args) != 3 {
		fail("usage: record.go record DIR | verify FILE | client SOCKET | server SOCKET")
	}
	var err error
	switch os.Args[1] {
	case "record":
		err = record(os.Args[2])
	case "verify":
		err = verify(os.Args[2])
	case "client":
		err = client(os.Args[2])
	case "server":
		err = server(os.Args[2])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fail(err.Error())
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "record.go:", msg)
	os.Exit(1)
}

// execHeaders is what client-go's remotecommand sends when it opens a stream: http.Header.Set
// canonicalises the name, spdystream lowercases it on the wire.
func execHeaders(streamType string) http.Header {
	h := http.Header{}
	h.Set("streamType", streamType)
	return h
}

// fixtures are the frames each go-*.bin file holds, written in order through one framer, so
// the SYN_STREAM file also shows the zlib context carrying over from one frame to the next.
func fixtures() map[string][]spdy.Frame {
	multi := execHeaders("stdout")
	multi.Add("X-Multi", "one")
	multi.Add("X-Multi", "two")
	portForward := http.Header{}
	portForward.Set("streamType", "data")
	portForward.Set("port", "8080")
	portForward.Set("requestID", "0")
	return map[string][]spdy.Frame{
		"go-syn-stream.bin": {
			&spdy.SynStreamFrame{StreamId: 1, Headers: execHeaders("error")},
			&spdy.SynStreamFrame{StreamId: 3, Headers: execHeaders("stdin")},
			&spdy.SynStreamFrame{StreamId: 5, Headers: multi},
			&spdy.SynStreamFrame{StreamId: 7, Headers: execHeaders("stderr")},
			&spdy.SynStreamFrame{StreamId: 9, Headers: execHeaders("resize")},
			&spdy.SynStreamFrame{StreamId: 11, AssociatedToStreamId: 9, Priority: 5, Headers: portForward,
				CFHeader: spdy.ControlFrameHeader{Flags: spdy.ControlFlagFin | spdy.ControlFlagUnidirectional}},
		},
		"go-syn-reply.bin": {
			&spdy.SynReplyFrame{StreamId: 1, Headers: http.Header{}},
			&spdy.SynReplyFrame{StreamId: 3, Headers: http.Header{"X-Reply": {"yes"}},
				CFHeader: spdy.ControlFrameHeader{Flags: spdy.ControlFlagFin}},
		},
		"go-headers.bin": {
			&spdy.HeadersFrame{StreamId: 5, Headers: http.Header{"X-Trailer": {"done"}},
				CFHeader: spdy.ControlFrameHeader{Flags: spdy.ControlFlagFin}},
		},
		"go-data.bin": {
			&spdy.DataFrame{StreamId: 3, Data: []byte("hello from go\n")},
			&spdy.DataFrame{StreamId: 3, Flags: spdy.DataFlagFin, Data: []byte{}},
		},
		"go-rst-stream.bin": {
			&spdy.RstStreamFrame{StreamId: 5, Status: spdy.Cancel},
			&spdy.RstStreamFrame{StreamId: 7, Status: spdy.RefusedStream},
		},
		"go-ping.bin": {
			&spdy.PingFrame{Id: 1},
			&spdy.PingFrame{Id: 2},
		},
		"go-goaway.bin": {
			&spdy.GoAwayFrame{LastGoodStreamId: 7, Status: spdy.GoAwayOK},
		},
		"go-settings.bin": {
			&spdy.SettingsFrame{FlagIdValues: []spdy.SettingsFlagIdValue{
				{Flag: spdy.FlagSettingsPersistValue, Id: spdy.SettingsMaxConcurrentStreams, Value: 100},
				{Id: spdy.SettingsInitialWindowSize, Value: 65536},
			}},
		},
		"go-window-update.bin": {
			&spdy.WindowUpdateFrame{StreamId: 3, DeltaWindowSize: 65536},
		},
	}
}

func record(dir string) error {
	for name, frames := range fixtures() {
		var buf bytes.Buffer
		framer, err := spdy.NewFramer(&buf, &buf)
		if err != nil {
			return err
		}
		for _, f := range frames {
			if err := framer.WriteFrame(f); err != nil {
				return fmt.Errorf("%s: %v", name, err)
			}
		}
		if err := ioutil.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o644); err != nil {
			return err
		}
		fmt.Printf("%s: %d frames, %d bytes\n", name, len(frames), buf.Len())
	}
	return nil
}

// rustFrames is what the Rust test `encoded_frames_match_rust_fixture` encodes into
// rust-frames.bin, in this order and through one compression context.
func rustFrames() []spdy.Frame {
	return []spdy.Frame{
		&spdy.SynStreamFrame{StreamId: 1, Headers: http.Header{"Streamtype": {"error"}}},
		&spdy.SynStreamFrame{StreamId: 3, Headers: http.Header{"Streamtype": {"stdin"}, "X-Multi": {"one", "two"}},
			CFHeader: spdy.ControlFrameHeader{Flags: spdy.ControlFlagUnidirectional}},
		&spdy.SynReplyFrame{StreamId: 2, Headers: http.Header{}},
		&spdy.SynReplyFrame{StreamId: 4, Headers: http.Header{"X-Reply": {"yes"}},
			CFHeader: spdy.ControlFrameHeader{Flags: spdy.ControlFlagFin}},
		&spdy.HeadersFrame{StreamId: 3, Headers: http.Header{"X-Trailer": {"done"}}},
		&spdy.DataFrame{StreamId: 3, Data: []byte("hello from rust\n")},
		&spdy.DataFrame{StreamId: 3, Flags: spdy.DataFlagFin, Data: []byte{}},
		&spdy.RstStreamFrame{StreamId: 5, Status: spdy.Cancel},
		&spdy.PingFrame{Id: 2},
		&spdy.GoAwayFrame{LastGoodStreamId: 7, Status: spdy.GoAwayProtocolError},
		&spdy.SettingsFrame{FlagIdValues: []spdy.SettingsFlagIdValue{
			{Flag: spdy.FlagSettingsPersisted, Id: spdy.SettingsMaxConcurrentStreams, Value: 100},
		}},
		&spdy.WindowUpdateFrame{StreamId: 3, DeltaWindowSize: 1024},
	}
}

func verify(file string) error {
	data, err := ioutil.ReadFile(file)
	if err != nil {
		return err
	}
	r := bytes.NewReader(data)
	framer, err := spdy.NewFramer(ioutil.Discard, r)
	if err != nil {
		return err
	}
	for i, want := range rustFrames() {
		got, err := framer.ReadFrame()
		if err != nil {
			return fmt.Errorf("frame %d: %v", i, err)
		}
		if err := sameFrame(got, want); err != nil {
			return fmt.Errorf("frame %d: %v", i, err)
		}
		fmt.Printf("frame %d ok: %T %+v\n", i, got, got)
	}
	if r.Len() != 0 {
		return fmt.Errorf("%d bytes left after the last frame", r.Len())
	}
	fmt.Println("verify: all frames decode as expected")
	return nil
}

// sameFrame compares the fields a peer acts on; ControlFrameHeader's length and version are
// unexported and filled in by the reader only.
func sameFrame(got, want spdy.Frame) error {
	if reflect.TypeOf(got) != reflect.TypeOf(want) {
		return fmt.Errorf("got %T, want %T", got, want)
	}
	var ok bool
	switch w := want.(type) {
	case *spdy.SynStreamFrame:
		g := got.(*spdy.SynStreamFrame)
		ok = g.StreamId == w.StreamId && g.AssociatedToStreamId == w.AssociatedToStreamId &&
			g.Priority == w.Priority && g.CFHeader.Flags == w.CFHeader.Flags && reflect.DeepEqual(g.Headers, w.Headers)
	case *spdy.SynReplyFrame:
		g := got.(*spdy.SynReplyFrame)
		ok = g.StreamId == w.StreamId && g.CFHeader.Flags == w.CFHeader.Flags && reflect.DeepEqual(g.Headers, w.Headers)
	case *spdy.HeadersFrame:
		g := got.(*spdy.HeadersFrame)
		ok = g.StreamId == w.StreamId && g.CFHeader.Flags == w.CFHeader.Flags && reflect.DeepEqual(g.Headers, w.Headers)
	case *spdy.DataFrame:
		g := got.(*spdy.DataFrame)
		ok = g.StreamId == w.StreamId && g.Flags == w.Flags && bytes.Equal(g.Data, w.Data)
	case *spdy.RstStreamFrame:
		g := got.(*spdy.RstStreamFrame)
		ok = g.StreamId == w.StreamId && g.Status == w.Status
	case *spdy.PingFrame:
		ok = got.(*spdy.PingFrame).Id == w.Id
	case *spdy.GoAwayFrame:
		g := got.(*spdy.GoAwayFrame)
		ok = g.LastGoodStreamId == w.LastGoodStreamId && g.Status == w.Status
	case *spdy.SettingsFrame:
		ok = reflect.DeepEqual(got.(*spdy.SettingsFrame).FlagIdValues, w.FlagIdValues)
	case *spdy.WindowUpdateFrame:
		g := got.(*spdy.WindowUpdateFrame)
		ok = g.StreamId == w.StreamId && g.DeltaWindowSize == w.DeltaWindowSize
	}
	if !ok {
		return fmt.Errorf("got %+v, want %+v", got, want)
	}
	return nil
}

// replyingHandler accepts every stream the way k8s' httpstream/spdy does: an empty SYN_REPLY.
func replyingHandler(streams chan<- *spdystream.Stream) spdystream.StreamHandler {
	return func(s *spdystream.Stream) {
		if err := s.SendReply(http.Header{}, false); err != nil {
			fmt.Fprintln(os.Stderr, "reply:", err)
			return
		}
		streams <- s
	}
}

// client plays kubectl exec against a Rust server: it opens error, stdin, stdout and stderr,
// sends stdinSize bytes on stdin and half-closes it, expects them back on stdout, a line on
// stderr, a status on error, a stream the server opens itself, then the server's RST and
// GOAWAY.
const stdinSize = 8 << 20

func client(socket string) error {
	nc, err := net.Dial("unix", socket)
	if err != nil {
		return err
	}
	conn, err := spdystream.NewConnection(nc, false)
	if err != nil {
		return err
	}
	pushed := make(chan *spdystream.Stream, 1)
	go conn.Serve(replyingHandler(pushed))

	rtt, err := conn.Ping()
	if err != nil {
		return fmt.Errorf("ping: %v", err)
	}
	fmt.Println("client: ping answered in", rtt)

	open := func(kind string) (*spdystream.Stream, error) {
		s, err := conn.CreateStream(execHeaders(kind), nil, false)
		if err != nil {
			return nil, err
		}
		return s, s.WaitTimeout(10 * time.Second)
	}
	streams := map[string]*spdystream.Stream{}
	for _, kind := range []string{"error", "stdin", "stdout", "stderr"} {
		if streams[kind], err = open(kind); err != nil {
			return fmt.Errorf("open %s: %v", kind, err)
		}
	}
	input := make([]byte, stdinSize)
	for i := range input {
		input[i] = byte(i*7 + i/251)
	}
	go func() {
		for off := 0; off < len(input); off += 32 << 10 {
			if _, err := streams["stdin"].Write(input[off : off+32<<10]); err != nil {
				fmt.Fprintln(os.Stderr, "stdin write:", err)
				return
			}
		}
		streams["stdin"].Close()
	}()
	readAll := func(kind string) ([]byte, error) { return ioutil.ReadAll(streams[kind]) }
	echoed, err := readAll("stdout")
	if err != nil {
		return err
	}
	if !bytes.Equal(echoed, input) {
		return fmt.Errorf("stdout: %d bytes, sha256 %s; want %d bytes, sha256 %s", len(echoed), digest(echoed), len(input), digest(input))
	}
	fmt.Printf("client: stdout echoed %d bytes (sha256 %s)\n", len(echoed), digest(echoed))
	stderr, err := readAll("stderr")
	if err != nil {
		return err
	}
	fmt.Printf("client: stderr %q\n", stderr)
	status, err := readAll("error")
	if err != nil {
		return err
	}
	fmt.Printf("client: error stream %q\n", status)
	select {
	case s := <-pushed:
		body, err := ioutil.ReadAll(s)
		if err != nil {
			return err
		}
		fmt.Printf("client: server-opened stream %d headers %v body %q\n", s.Identifier(), s.Headers(), body)
	case <-time.After(10 * time.Second):
		return fmt.Errorf("the server opened no stream")
	}
	select {
	case <-conn.CloseChan():
		fmt.Println("client: connection closed by the server (GOAWAY)")
	case <-time.After(10 * time.Second):
		return fmt.Errorf("the server did not close the connection")
	}
	if string(stderr) != "stderr line\n" || string(status) != `{"status":"Success"}` {
		return fmt.Errorf("unexpected stderr or status")
	}
	fmt.Println("client: PASS")
	return nil
}

// server plays a k8s server for a Rust client: it replies to every stream and echoes each
// stream's data back on it until the client half-closes, then half-closes too. It answers
// pings, sends one of its own, and returns when the client's GOAWAY closed the connection.
func server(socket string) error {
	os.Remove(socket)
	l, err := net.Listen("unix", socket)
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Println("server: listening on", socket)
	nc, err := l.Accept()
	if err != nil {
		return err
	}
	conn, err := spdystream.NewConnection(nc, true)
	if err != nil {
		return err
	}
	streams := make(chan *spdystream.Stream, 16)
	go conn.Serve(replyingHandler(streams))
	// The first stream waits for a ping round trip before anything is echoed, so the client
	// is certainly still there to answer it.
	first := <-streams
	rtt, err := conn.Ping()
	if err != nil {
		return fmt.Errorf("ping: %v", err)
	}
	fmt.Println("server: ping answered in", rtt)
	echo := func(s *spdystream.Stream) {
		n, err := io.Copy(s, s)
		fmt.Printf("server: stream %d %v echoed %d bytes (%v)\n", s.Identifier(), s.Headers(), n, err)
		s.Close()
	}
	go echo(first)
	go func() {
		for s := range streams {
			go echo(s)
		}
	}()
	select {
	case <-conn.CloseChan():
		fmt.Println("server: client sent GOAWAY or closed; PASS")
	case <-time.After(60 * time.Second):
		return fmt.Errorf("the client never closed the connection")
	}
	return nil
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}
