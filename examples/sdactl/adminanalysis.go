package main

// adminAnalysisCmds are the commands that explain and compare the access
// the policies give: explain, what-if, diff, test, changes.
var adminAnalysisCmds []*command
