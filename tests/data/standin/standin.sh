# Shared body of the helm and kubectl stand-ins (sourced by them with TOOL set). No
# Kubernetes API server runs where the unit tests run, so these record how ferry called
# them and answer from a script of rules:
#
# - Each call appends one JSON line to $FERRY_STANDIN_LOG (when set):
#     {"tool":"helm","argv":["upgrade",...],"stdin":"...","env":{"KUBECONFIG":"..."}}
#   argv excludes the program name; stdin loses its trailing newlines.
# - $FERRY_STANDIN_RULES (when set) holds rules, one per line, fields separated by TABs:
#     MATCH  EXIT  STDOUT-FILE  STDERR-TEXT
#   MATCH is a substring of "TOOL ARG1 ARG2 ..." (space-joined); the first rule that
#   matches decides. EXIT is an exit code, or "hang" (print STDERR-TEXT, then sleep until
#   killed). STDOUT-FILE is printed ("-": nothing; relative paths are below the rules
#   file's directory). STDERR-TEXT goes to standard error with printf %b escapes ("-" or
#   absent: nothing). Empty lines and lines starting with # are ignored.
# - Without a matching rule: exit 0, no output; but `helm status` exits 1 with
#   "Error: release: not found", as for a release that was never installed.

input=$(cat)
if [ -n "${FERRY_STANDIN_LOG:-}" ]; then
  # One awk for the whole line; the values come through ARGV and ENVIRON, which awk
  # takes verbatim (unlike -v, which would expand backslashes).
  STANDIN_TOOL=$TOOL STANDIN_INPUT=$input awk '
    function str(s,    out, i, c) {
      out = ""
      for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (c == "\\") c = "\\\\"
        else if (c == "\"") c = "\\\""
        else if (c == "\n") c = "\\n"
        else if (c == "\t") c = "\\t"
        else if (c == "\r") c = "\\r"
        out = out c
      }
      return "\"" out "\""
    }
    BEGIN {
      args = ""
      for (i = 1; i < ARGC; i++) args = args (i > 1 ? "," : "") str(ARGV[i])
      printf "{\"tool\":%s,\"argv\":[%s],\"stdin\":%s,\"env\":{\"KUBECONFIG\":%s}}\n", \
        str(ENVIRON["STANDIN_TOOL"]), args, str(ENVIRON["STANDIN_INPUT"]), str(ENVIRON["KUBECONFIG"])
    }' "$@" >>"$FERRY_STANDIN_LOG"
fi

call="$TOOL $*"
if [ -n "${FERRY_STANDIN_RULES:-}" ]; then
  rules_dir=${FERRY_STANDIN_RULES%/*}
  tab=$(printf '\t')
  while IFS="$tab" read -r match code out err; do
    case "$match" in '' | '#'*) continue ;; esac
    case "$call" in
      *"$match"*)
        if [ -n "$out" ] && [ "$out" != "-" ]; then
          case "$out" in /*) ;; *) out="$rules_dir/$out" ;; esac
          cat "$out"
        fi
        if [ -n "$err" ] && [ "$err" != "-" ]; then printf '%b\n' "$err" >&2; fi
        if [ "$code" = "hang" ]; then exec sleep 600; fi
        exit "$code"
        ;;
    esac
  done <"$FERRY_STANDIN_RULES"
fi

case "$call" in
  "helm status "*)
    echo "Error: release: not found" >&2
    exit 1
    ;;
esac
exit 0
