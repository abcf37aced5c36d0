package sbom

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// MediaType is the media type of the document, and the artifact type of
// the OCI manifest that carries it (what Trivy, Grype/Syft and oras look
// for among an image's referrers).
const MediaType = "application/spdx+json"

// The SPDX 2.3 JSON document, as far as strata fills it. These structs,
// rather than spdx/tools-golang's model, keep the output's bytes in this
// package's hands (field order, what is omitted), which is what the SBOM's
// digest rests on, and keep that module's dependencies (a YAML and a
// struct-conversion library, and its tag-value and RDF readers) out of
// strata for a dozen fields.
type document struct {
	SPDXVersion       string         `json:"spdxVersion"`
	DataLicense       string         `json:"dataLicense"`
	SPDXID            string         `json:"SPDXID"`
	Name              string         `json:"name"`
	DocumentNamespace string         `json:"documentNamespace"`
	CreationInfo      creationInfo   `json:"creationInfo"`
	Packages          []spdxPackage  `json:"packages"`
	Relationships     []relationship `json:"relationships"`
}

type creationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	Name                  string        `json:"name"`
	SPDXID                string        `json:"SPDXID"`
	VersionInfo           string        `json:"versionInfo,omitempty"`
	DownloadLocation      string        `json:"downloadLocation"`
	FilesAnalyzed         bool          `json:"filesAnalyzed"`
	LicenseConcluded      string        `json:"licenseConcluded"`
	LicenseDeclared       string        `json:"licenseDeclared"`
	CopyrightText         string        `json:"copyrightText"`
	SourceInfo            string        `json:"sourceInfo,omitempty"`
	PrimaryPackagePurpose string        `json:"primaryPackagePurpose,omitempty"`
	ExternalRefs          []externalRef `json:"externalRefs,omitempty"`
}

type externalRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

type relationship struct {
	SPDXElementID      string `json:"spdxElementId"`
	RelationshipType   string `json:"relationshipType"`
	RelatedSPDXElement string `json:"relatedSpdxElement"`
}

const noAssertion = "NOASSERTION"

// Document writes the SPDX 2.3 JSON SBOM of the image name whose manifest
// is manifest: a package for the image (purpose CONTAINER, purl
// pkg:oci) that the document describes and that contains pkgs, in order.
// created is the build's epoch, the one time the document holds; its
// namespace derives from the manifest digest. The creator names strata
// without its version, so that a newer strata that finds the same
// packages gives the same digest.
func Document(name string, manifest digest.Digest, created time.Time, pkgs []Package) ([]byte, error) {
	if err := manifest.Validate(); err != nil {
		return nil, fmt.Errorf("SBOM of %s: manifest digest: %w", name, err)
	}
	const imageID = "SPDXRef-Image"
	doc := document{
		SPDXVersion:       "SPDX-2.3",
		DataLicense:       "CC0-1.0",
		SPDXID:            "SPDXRef-DOCUMENT",
		Name:              name,
		DocumentNamespace: "https://github.com/strata-build/strata/spdx/" + url.PathEscape(name) + "-" + manifest.Encoded(),
		CreationInfo: creationInfo{
			Created:  created.UTC().Format(time.RFC3339),
			Creators: []string{"Tool: strata"},
		},
		Packages: []spdxPackage{{
			Name:                  name,
			SPDXID:                imageID,
			VersionInfo:           manifest.String(),
			DownloadLocation:      noAssertion,
			LicenseConcluded:      noAssertion,
			LicenseDeclared:       noAssertion,
			CopyrightText:         noAssertion,
			PrimaryPackagePurpose: "CONTAINER",
			ExternalRefs: []externalRef{{
				ReferenceCategory: "PACKAGE-MANAGER",
				ReferenceType:     "purl",
				ReferenceLocator:  "pkg:oci/" + escape(strings.ToLower(path.Base(name))) + "@" + escape(manifest.String()),
			}},
		}},
		Relationships: []relationship{{SPDXElementID: "SPDXRef-DOCUMENT", RelationshipType: "DESCRIBES", RelatedSPDXElement: imageID}},
	}
	for _, p := range pkgs {
		purl := p.PURL()
		sum := sha256.Sum256([]byte(purl))
		id := "SPDXRef-Package-" + p.Type + "-" + hex.EncodeToString(sum[:8])
		sp := spdxPackage{
			Name:             p.Name,
			SPDXID:           id,
			VersionInfo:      p.Version,
			DownloadLocation: noAssertion,
			LicenseConcluded: noAssertion,
			LicenseDeclared:  noAssertion,
			CopyrightText:    noAssertion,
			SourceInfo:       "found in " + strings.Join(p.Found, ", "),
			ExternalRefs:     []externalRef{{ReferenceCategory: "PACKAGE-MANAGER", ReferenceType: "purl", ReferenceLocator: purl}},
		}
		if p.Type == "golang" && p.Namespace != "" {
			sp.Name = p.Namespace + "/" + p.Name // the module path
		}
		if p.Type == OS {
			id = "SPDXRef-OperatingSystem"
			sp.SPDXID, sp.ExternalRefs, sp.PrimaryPackagePurpose = id, nil, "OPERATING-SYSTEM"
		}
		doc.Packages = append(doc.Packages, sp)
		doc.Relationships = append(doc.Relationships, relationship{SPDXElementID: imageID, RelationshipType: "CONTAINS", RelatedSPDXElement: id})
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("SBOM of %s: %w", name, err)
	}
	return b, nil
}

// Count returns how many packages the SBOM doc lists, the image's and the
// distribution's own packages left out.
func Count(doc []byte) (int, error) {
	var d struct {
		Packages []struct {
			Purpose string `json:"primaryPackagePurpose"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return 0, err
	}
	n := 0
	for _, p := range d.Packages {
		if p.Purpose != "CONTAINER" && p.Purpose != "OPERATING-SYSTEM" {
			n++
		}
	}
	return n, nil
}

// PURL is the package URL scanners match advisories by:
// pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=debian-12,
// pkg:apk/alpine/NAME@VERSION?arch=ARCH, pkg:golang/MODULE@VERSION. The
// distribution (Type OS) has none.
func (p Package) PURL() string {
	if p.Type == OS {
		return ""
	}
	var b strings.Builder
	b.WriteString("pkg:" + p.Type + "/")
	if p.Namespace != "" {
		segs := strings.Split(p.Namespace, "/")
		for i := range segs {
			segs[i] = escape(segs[i])
		}
		b.WriteString(strings.Join(segs, "/") + "/")
	}
	b.WriteString(escape(p.Name))
	if p.Version != "" {
		b.WriteString("@" + escape(p.Version))
	}
	// Qualifiers sorted by key, as the purl spec wants them.
	var q []string
	if p.Arch != "" {
		q = append(q, "arch="+escape(p.Arch))
	}
	if p.Distro != "" {
		q = append(q, "distro="+escape(p.Distro))
	}
	if len(q) > 0 {
		b.WriteString("?" + strings.Join(q, "&"))
	}
	return b.String()
}

// escape percent-encodes s as the purl spec asks of each component
// (Debian's "1:2.36+dfsg" becomes "1%3A2.36%2Bdfsg"), as packageurl-go
// does.
func escape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}
