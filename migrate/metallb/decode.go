package metallb

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// ParseError is a YAML document that cannot be read at all. The whole conversion stops on one:
// converting the rest would drop what that document held without a word.
type ParseError struct {
	// Document is the 1-based position of the document in the stream.
	Document int
	Err      error
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("YAML document %d: %v", e.Document, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// maxListDepth bounds Lists nested in Lists: kubectl writes one level, and a bound keeps a
// hostile input from recursing without end.
const maxListDepth = 2

// object is one MetalLB object of the input, with its spec decoded.
type object[T any] struct {
	// where names the object in findings: "IPAddressPool metallb-system/first-pool", or the
	// place in a pre-0.13 ConfigMap it was made from.
	where     string
	name      string
	namespace string
	labels    map[string]string
	spec      T
}

// input is every MetalLB object read, in input order.
type input struct {
	pools       []object[ipAddressPoolSpec]
	l2          []object[l2AdvertisementSpec]
	bgp         []object[bgpAdvertisementSpec]
	communities []object[communitySpec]
	peers       []object[bgpPeerSpec]
	namespaces  []string
}

// header is what the converter reads of any Kubernetes object before knowing its kind.
type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name        string            `json:"name"`
		Namespace   string            `json:"namespace"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec  json.RawMessage   `json:"spec"`
	Data  map[string]string `json:"data"`
	Items []json.RawMessage `json:"items"`
}

// read splits the YAML stream into documents and sorts every object into c.in.
func (c *converter) read(r io.Reader) error {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	for n := 1; ; n++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return &ParseError{Document: n, Err: err}
		}
		data, err := utilyaml.ToJSON(doc)
		if err != nil {
			return &ParseError{Document: n, Err: err}
		}
		data = bytes.TrimSpace(data)
		if len(data) == 0 || string(data) == "null" {
			continue // an empty document, or comments only
		}
		c.readObject(data, fmt.Sprintf("document %d", n), 0)
	}
}

// readObject sorts one JSON object, or the items of a List, into c.in.
func (c *converter) readObject(data []byte, where string, depth int) {
	var h header
	// Case-sensitive, as the API server is: "AutoAssign" is not "autoAssign", and is reported.
	if err := utiljson.Unmarshal(data, &h); err != nil {
		c.ignore(where, "not a Kubernetes object: "+err.Error())
		return
	}
	if strings.HasSuffix(h.Kind, "List") && h.Metadata.Name == "" {
		if depth >= maxListDepth {
			c.ignore(where, fmt.Sprintf("a %s nested more than %d deep", h.Kind, maxListDepth))
			return
		}
		for i, item := range h.Items {
			c.readObject(item, fmt.Sprintf("%s item %d", where, i), depth+1)
		}
		return
	}
	group, version, _ := strings.Cut(h.APIVersion, "/")
	if version == "" {
		group, version = "", group
	}
	who := h.Kind + " " + h.Metadata.Name
	if h.Metadata.Namespace != "" {
		who = h.Kind + " " + h.Metadata.Namespace + "/" + h.Metadata.Name
	}
	switch {
	case group == "" && version == "v1" && h.Kind == "ConfigMap" && h.Data["config"] != "":
		c.readLegacy(who, h.Metadata.Namespace, h.Data["config"])
		return
	case group != "metallb.io":
		c.ignore(who, "not MetalLB configuration")
		return
	}
	if h.Metadata.Name == "" {
		c.notConverted(who+" ("+where+")", "metadata.name", "the object has no name")
		return
	}
	c.noteNamespace(h.Metadata.Namespace)
	if len(h.Metadata.Annotations) > 0 {
		var keys []string
		for k := range h.Metadata.Annotations {
			if k != "kubectl.kubernetes.io/last-applied-configuration" {
				keys = append(keys, k)
			}
		}
		if len(keys) > 0 {
			slices.Sort(keys)
			c.decide(who, "metadata.annotations", fmt.Sprintf("not carried over (%s): they describe the MetalLB object", strings.Join(keys, ", ")))
		}
	}
	switch h.Kind {
	case "IPAddressPool":
		if o, ok := decodeSpec[ipAddressPoolSpec](c, who, h); ok {
			c.in.pools = append(c.in.pools, o)
		}
	case "L2Advertisement":
		if o, ok := decodeSpec[l2AdvertisementSpec](c, who, h); ok {
			c.in.l2 = append(c.in.l2, o)
		}
	case "BGPAdvertisement":
		if o, ok := decodeSpec[bgpAdvertisementSpec](c, who, h); ok {
			c.in.bgp = append(c.in.bgp, o)
		}
	case "Community":
		if o, ok := decodeSpec[communitySpec](c, who, h); ok {
			c.in.communities = append(c.in.communities, o)
		}
	case "BGPPeer":
		if o, ok := decodeSpec[bgpPeerSpec](c, who, h); ok {
			c.in.peers = append(c.in.peers, o)
		}
	case "BFDProfile":
		c.notConverted(who, "", "BFD is not supported yet: sessions rely on the BGP hold time to detect a dead peer")
	case "ServiceL2Status", "ServiceBGPStatus", "BGPSessionState", "ConfigurationState":
		c.ignore(who, "status written by MetalLB, not configuration")
	default:
		c.notConverted(who, "", "a MetalLB kind this converter does not know")
	}
}

// decodeSpec decodes h.Spec into T, reporting fields T does not know. An object whose spec does
// not decode is reported and left out.
func decodeSpec[T any](c *converter, who string, h header) (object[T], bool) {
	o := object[T]{where: who, name: h.Metadata.Name, namespace: h.Metadata.Namespace, labels: h.Metadata.Labels}
	if len(h.Spec) == 0 || string(h.Spec) == "null" {
		return o, true
	}
	if err := utiljson.Unmarshal(h.Spec, &o.spec); err != nil {
		c.notConverted(who, "spec", "cannot be read: "+err.Error())
		return o, false
	}
	for _, path := range unknownFields(h.Spec, reflect.TypeFor[T](), "spec") {
		c.notConverted(who, path, "not a field this converter knows (a newer MetalLB?)")
	}
	return o, true
}

func (c *converter) noteNamespace(ns string) {
	if ns != "" && !slices.Contains(c.in.namespaces, ns) {
		c.in.namespaces = append(c.in.namespaces, ns)
	}
}

// unknownFields lists the paths of the object keys in data that t has no JSON field for,
// recursing into nested objects and lists. Values that are not objects are left to the decoder.
func unknownFields(data json.RawMessage, t reflect.Type, path string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []string
	switch t.Kind() {
	case reflect.Slice:
		var items []json.RawMessage
		if json.Unmarshal(data, &items) != nil {
			return nil
		}
		for i, item := range items {
			out = append(out, unknownFields(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
		}
	case reflect.Struct:
		var fields map[string]json.RawMessage
		if json.Unmarshal(data, &fields) != nil {
			return nil
		}
		known := map[string]reflect.Type{}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name != "" && name != "-" {
				known[name] = f.Type
			}
		}
		keys := make([]string, 0, len(fields))
		for k := range fields {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			ft, ok := known[k]
			if !ok {
				out = append(out, path+"."+k)
				continue
			}
			out = append(out, unknownFields(fields[k], ft, path+"."+k)...)
		}
	}
	return out
}
