package dsl

// FuncPackage is funcPackage, for the external tests.
var FuncPackage = funcPackage
