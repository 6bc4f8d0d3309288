#!/usr/bin/env python3
"""Writes nlbctl's bash completion from what the built nlbctl says it accepts.

    gen-nlbctl-completion.py NLBCTL TEMPLATE OUTPUT

Runs `NLBCTL --help` and `NLBCTL cert --help` and fills TEMPLATE's
@PLACEHOLDERS@ with the verbs, the options and the cert subcommands listed
there, so that the completion cannot drift from the command registry
(include/nlbd/ctl/commands.hpp) or the cert helper's options. Fails (exit 1)
when the help text no longer has the shape parsed here, rather than writing
a completion that completes nothing.
"""

import re
import subprocess
import sys

TARGET_SYNOPSIS = "<vip:port|port|all>"
# An option's value placeholder: FILE-like ones get file completion.
FILE_PLACEHOLDER = re.compile(r"^(PATH|F|FILE|[A-Z0-9_-]*\.[A-Za-z0-9]+)$")


def fail(msg):
    sys.exit("gen-nlbctl-completion: " + msg)


def help_text(nlbctl, *args):
    r = subprocess.run([nlbctl, *args, "--help"], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"{nlbctl} {' '.join(args)} --help exited {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def options_in(text):
    """(--option, placeholder or None) in order of appearance."""
    out = []
    for m in re.finditer(r"(?<![\w-])(--[a-z][a-z0-9-]*)((?:\s+[^\s\[\]()|$-][^\s\[\]()]*)?)", text):
        name, value = m.group(1), m.group(2).strip()
        # A value is a placeholder (PATH, OUT.key, HOST:PORT) or a choice
        # list (ec|rsa); prose after a flag ("print the ...") is neither.
        if value and not (value[0].isupper() or re.fullmatch(r"[a-z0-9]+(\|[a-z0-9]+)+", value)):
            value = ""
        out.append((name, value or None))
    return out


def parse_main(text):
    head, sep, rest = text.partition("\ncommands")
    if not sep:
        fail("nlbctl --help has no 'commands' section")
    options = options_in(head.split("\n", 1)[1] if "\n" in head else "")
    verbs, target_verbs = [], []
    for line in rest.split("\n")[1:]:
        if line.startswith("exit status"):
            break
        m = re.match(r"^  ([a-z][a-z0-9-]*)(?: (\S+))?", line)
        if not m:
            continue
        verbs.append(m.group(1))
        if m.group(2) == TARGET_SYNOPSIS:
            target_verbs.append(m.group(1))
    for must in ("query", "cert"):
        if must not in verbs:
            fail(f"nlbctl --help lists no '{must}' command (verbs found: {verbs})")
    if not target_verbs:
        fail(f"nlbctl --help lists no command taking {TARGET_SYNOPSIS}")
    if not options:
        fail("nlbctl --help lists no options")
    return options, verbs, target_verbs


def parse_cert(text):
    blocks, current = {}, None
    for line in text.split("\n")[1:]:
        if line.startswith("exit status"):
            break
        m = re.match(r"^  ([a-z]+)\s", line)
        if m:
            current = m.group(1)
            blocks[current] = line[m.end():]
        elif current and line.startswith("   "):
            blocks[current] += "\n" + line
    if "request" not in blocks or len(blocks) < 2:
        fail(f"nlbctl cert --help has an unexpected shape (subcommands found: {list(blocks)})")
    opts = {}
    for sub, body in blocks.items():
        o = options_in(body)
        if "as for request" in body:
            o = options_in(blocks["request"]) + o
        seen, uniq = set(), []
        for name, value in o:
            if name not in seen:
                seen.add(name)
                uniq.append((name, value))
        opts[sub] = uniq
    return opts


def words(items):
    return " ".join(items)


def main():
    if len(sys.argv) != 4:
        fail("usage: gen-nlbctl-completion.py NLBCTL TEMPLATE OUTPUT")
    nlbctl, template, output = sys.argv[1:]
    options, verbs, target_verbs = parse_main(help_text(nlbctl))
    cert = parse_cert(help_text(nlbctl, "cert"))

    all_cert = [o for sub in cert.values() for o in sub]
    values = {
        "VERBS": words(verbs),
        "TARGET_VERBS": words(target_verbs),
        "OPTIONS": words(n for n, _ in options),
        "OPTIONS_WITH_ARG": words(n for n, v in options if v),
        "FILE_OPTIONS": words(n for n, v in options if v and FILE_PLACEHOLDER.match(v)),
        "CERT_SUBCOMMANDS": words(cert),
        "CERT_OPTIONS_WITH_ARG": words(sorted({n for n, v in all_cert if v})),
        "CERT_FILE_OPTIONS": words(sorted({n for n, v in all_cert if v and FILE_PLACEHOLDER.match(v)})),
        "CERT_OPTIONS_CASE": "\n".join(
            f"            {sub}) sub_options='{words(n for n, _ in o)}' ;;" for sub, o in cert.items()),
        "CERT_CHOICES_CASE": "\n".join(
            f"            {n}) choices='{v.replace('|', ' ')}' ;;"
            for n, v in sorted({(n, v) for n, v in all_cert if v and "|" in v})),
    }
    with open(template) as f:
        text = f.read()
    for key, value in values.items():
        if f"@{key}@" not in text:
            fail(f"{template} has no @{key}@")
        text = text.replace(f"@{key}@", value)
    if re.search(r"@[A-Z_]+@", text):
        fail(f"{template} has an unknown placeholder: {re.search(r'@[A-Z_]+@', text).group(0)}")
    with open(output, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
