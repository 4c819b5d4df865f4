package metallb

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	sjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
)

// WriteYAML writes the report as comments, then every object as a YAML document, ready for
// "kubectl apply -f". The report comes first so that whoever opens the file reads it before the
// objects.
func (r *Result) WriteYAML(w io.Writer) error {
	var buf bytes.Buffer
	buf.WriteString("# Converted from MetalLB by \"baremetal-announcer migrate-metallb\"; see docs/migrate-from-metallb.md.\n")
	fmt.Fprintf(&buf, "# %d IPPools, %d BGPPeers, %d Secrets. %d MetalLB settings NOT CONVERTED, %d decisions, %d objects ignored.\n",
		len(r.Pools), len(r.Peers), len(r.Secrets), r.Count(NotConverted), r.Count(Decision), r.Count(Ignored))
	for _, k := range []FindingKind{NotConverted, Decision, Ignored} {
		if r.Count(k) == 0 {
			continue
		}
		fmt.Fprintf(&buf, "#\n# %s:\n", headings[k])
		for _, f := range r.Findings {
			if f.Kind == k {
				writeComment(&buf, "  - ", "    ", f.String())
			}
		}
	}
	for i := range r.Pools {
		if err := writeObject(&buf, "", &r.Pools[i]); err != nil {
			return err
		}
	}
	for i := range r.Peers {
		if err := writeObject(&buf, "", &r.Peers[i]); err != nil {
			return err
		}
	}
	for i := range r.Secrets {
		s := &r.Secrets[i]
		note := fmt.Sprintf("The TCP MD5 password of BGPPeer %s, which MetalLB kept in plain text in the BGPPeer. This file holds it in plain text too: keep it private, or create the Secret another way.", s.Labels[PeerLabel])
		if err := writeObject(&buf, note, s); err != nil {
			return err
		}
	}
	_, err := w.Write(buf.Bytes())
	return err
}

var headings = map[FindingKind]string{
	NotConverted: "NOT CONVERTED (no equivalent here: act on each before applying)",
	Decision:     "DECISIONS (converted; worth knowing)",
	Ignored:      "IGNORED (not MetalLB configuration)",
}

// writeComment writes text as comment lines, each line prefixed, and a line longer than 100
// columns wrapped at spaces so the report reads in a terminal.
func writeComment(buf *bytes.Buffer, first, rest, text string) {
	prefix := first
	line := ""
	for _, word := range strings.Fields(text) {
		if line != "" && len(prefix)+len(line)+1+len(word) > 98 {
			buf.WriteString("#" + prefix + line + "\n")
			prefix, line = rest, ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	buf.WriteString("#" + prefix + line + "\n")
}

var yamlSerializer = sjson.NewSerializerWithOptions(sjson.DefaultMetaFactory, nil, nil, sjson.SerializerOptions{Yaml: true})

// writeObject writes one document. Fields the API server fills in (status, creationTimestamp)
// are left out: the typed structs would write them as empty values.
func writeObject(buf *bytes.Buffer, note string, obj runtime.Object) error {
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return fmt.Errorf("converting %T to YAML: %w", obj, err)
	}
	delete(content, "status")
	if meta, ok := content["metadata"].(map[string]any); ok {
		delete(meta, "creationTimestamp")
	}
	buf.WriteString("---\n")
	if note != "" {
		writeComment(buf, " ", " ", note)
	}
	if err := yamlSerializer.Encode(&unstructured.Unstructured{Object: content}, buf); err != nil {
		return fmt.Errorf("writing %T as YAML: %w", obj, err)
	}
	return nil
}
