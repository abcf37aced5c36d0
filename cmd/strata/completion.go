package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/strata-build/strata/internal/cmdline"
)

// The completion scripts are made from commands(): every flag a command
// registers is offered, so a new flag needs no change here.

// cmdCompletion prints the completion script of a shell.
func cmdCompletion(w io.Writer, args []string) error {
	pos, err := parse(newFlagSet("completion"), args) // no flags but -h
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return cmdline.FlagError{Msg: "which shell? strata completion bash|zsh|fish"}
	}
	switch pos[0] {
	case "bash":
		fmt.Fprint(w, bashHeader)
		writeBash(w)
	case "zsh":
		fmt.Fprint(w, zshHeader)
		writeBash(w)
	case "fish":
		writeFish(w)
	default:
		return cmdline.FlagError{Msg: fmt.Sprintf("no completion for shell %q: use bash, zsh or fish", pos[0])}
	}
	return nil
}

// completionFlag is one flag as a completion script sees it.
type completionFlag struct {
	name  string
	value string // empty for a flag that takes no value
	text  string
}

// file reports whether the flag's value is a path.
func (f completionFlag) file() bool {
	return f.value == "folder" || f.value == "file"
}

func completionFlags(c command) []completionFlag {
	var out []completionFlag
	commandFlags(c).VisitAll(func(f *flag.Flag) {
		value, text := flag.UnquoteUsage(f)
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			value = ""
		}
		out = append(out, completionFlag{name: f.Name, value: value, text: text})
	})
	return out
}

const bashHeader = `# bash completion for strata, printed by 'strata completion bash'.
# Load it with: source <(strata completion bash)
# or save it as ~/.local/share/bash-completion/completions/strata
`

const zshHeader = `#compdef strata
# zsh completion for strata, printed by 'strata completion zsh': the bash
# completion, through zsh's bashcompinit.
# Load it with: source <(strata completion zsh)
(( $+functions[compdef] )) || { autoload -U +X compinit && compinit }
autoload -U +X bashcompinit && bashcompinit
`

// writeBash writes the bash completion function. Image names come from
// strata list (its first column), in the folder -C names if any.
func writeBash(w io.Writer) {
	fmt.Fprint(w, `
_strata_images() {
    if [ -n "$1" ]; then
        strata -C "$1" list 2>/dev/null | cut -d' ' -f1
    else
        strata list 2>/dev/null | cut -d' ' -f1
    fi
}

_strata() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local cmd="" dir="" i=1
    COMPREPLY=()
    while [ "$i" -lt "$COMP_CWORD" ]; do
        case ${COMP_WORDS[i]} in
        -C) dir=${COMP_WORDS[i+1]}; i=$((i + 2)) ;;
        *) cmd=${COMP_WORDS[i]}; break ;;
        esac
    done
    if [ -z "$cmd" ]; then
        if [ "$prev" = -C ]; then
            COMPREPLY=($(compgen -d -- "$cur"))
        else
`)
	fmt.Fprintf(w, "            COMPREPLY=($(compgen -W %q -- \"$cur\"))\n", strings.Join(commandNames(), " ")+" -C")
	fmt.Fprint(w, `        fi
        return 0
    fi
    # After "--" the words are a command for the image.
    local j
    for ((j = i + 1; j < COMP_CWORD; j++)); do
        [ "${COMP_WORDS[j]}" = -- ] && return 0
    done
    local bools="" values="" files="" images=""
    case $cmd in
`)
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
		if c.name == "completion" {
			fmt.Fprint(w, "    completion)\n        COMPREPLY=($(compgen -W \"bash zsh fish\" -- \"$cur\"))\n        return 0 ;;\n")
			continue
		}
		var bools, values, files []string
		for _, f := range completionFlags(c) {
			switch {
			case f.value == "":
				bools = append(bools, "--"+f.name)
			case f.file():
				files = append(files, "--"+f.name)
				values = append(values, "--"+f.name)
			default:
				values = append(values, "--"+f.name)
			}
		}
		fmt.Fprintf(w, "    %s)\n        bools=%q\n        values=%q\n        files=%q\n", c.name,
			strings.Join(bools, " "), strings.Join(values, " "), strings.Join(files, " "))
		if c.images {
			fmt.Fprint(w, "        images=1\n")
		}
		fmt.Fprint(w, "        ;;\n")
	}
	fmt.Fprintf(w, "    help)\n        COMPREPLY=($(compgen -W %q -- \"$cur\"))\n        return 0 ;;\n", strings.Join(names, " "))
	fmt.Fprint(w, `    *) return 0 ;;
    esac
    case " $files " in *" $prev "*)
        COMPREPLY=($(compgen -f -- "$cur"))
        return 0 ;;
    esac
    case " $values " in *" $prev "*) return 0 ;; esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$bools $values" -- "$cur"))
    elif [ -n "$images" ]; then
        COMPREPLY=($(compgen -W "$(_strata_images "$dir")" -- "$cur"))
    fi
    return 0
}

complete -F _strata strata
`)
}

// writeFish writes fish completions: commands and flags with their help
// text, image names from strata list.
func writeFish(w io.Writer) {
	fmt.Fprint(w, `# fish completion for strata, printed by 'strata completion fish'.
# Load it with: strata completion fish | source
# or save it as ~/.config/fish/completions/strata.fish

function __strata_images
    strata list 2>/dev/null | string replace -r '\s.*' ''
end

complete -c strata -f
complete -c strata -n __fish_use_subcommand -s C -x -a '(__fish_complete_directories)' -d 'run as if started in DIR'
complete -c strata -n __fish_use_subcommand -a help -d 'show the commands'
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "\ncomplete -c strata -n __fish_use_subcommand -a %s -d %s\n", c.name, fishQuote(c.summary))
		cond := fishQuote("__fish_seen_subcommand_from " + c.name)
		if c.name == "completion" {
			fmt.Fprintf(w, "complete -c strata -n %s -a 'bash zsh fish'\n", cond)
		}
		if c.images {
			fmt.Fprintf(w, "complete -c strata -n %s -a '(__strata_images)'\n", cond)
		}
		for _, f := range completionFlags(c) {
			kind := ""
			switch {
			case f.file():
				kind = " -r -F"
			case f.value != "":
				kind = " -x"
			}
			fmt.Fprintf(w, "complete -c strata -n %s -l %s%s -d %s\n", cond, f.name, kind, fishQuote(shortText(f.text)))
		}
	}
}

// shortText is the part of a flag's help that fits a completion menu.
func shortText(s string) string {
	for _, sep := range []string{"; ", ": ", " ("} {
		if i := strings.Index(s, sep); i > 0 {
			s = s[:i]
		}
	}
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > 70 {
		s = string(r[:69]) + "…"
	}
	return s
}

func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
