package dsl

import "slices"

// Tag adds tags under which strata publish pushes the image (default:
// "latest").
func (i *Image) Tag(tags ...string) *Image {
	c := i.clone()
	c.tags = append(c.tags, tags...)
	return c
}

// Tags returns the tags set with Tag.
func (i *Image) Tags() []string { return slices.Clone(i.tags) }
