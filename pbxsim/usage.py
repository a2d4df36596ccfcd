"""The text of Asterisk 22's `520` usage replies.

res_agi sends `520-Invalid command syntax.  Proper usage follows:\\n`, then the command's XML
<description> rendered by main/xmldoc.c (each <para> on its own line with its whitespace collapsed,
inline tags such as <literal> kept verbatim, <variablelist>/<enumlist>/<note> rendered as below),
then `520 End of proper usage.\\n`.  STREAM FILE is byte-checked against a capture of Asterisk
22.10.1 (TRANSCRIPTS.md §1); the others are rendered here by the same rules from the res_agi.c
documentation of current Asterisk, so a wording change between versions would not show up.
"""
from __future__ import annotations

HEAD = "520-Invalid command syntax.  Proper usage follows:\n"
TAIL = "520 End of proper usage.\n"

_SAY_TAIL = ("Returns <literal>0</literal> if playback completes without a digit being pressed, "
             "or the ASCII numerical value of the digit if one was pressed or <literal>-1</literal> "
             "on error/hangup.")


def _variables(*items: tuple[str, str, tuple[str, ...]]) -> list[str]:
    """xmldoc_parse_variablelist: `<variable>NAME</variable>: para`, values indented 4 spaces."""
    lines = []
    for name, para, values in items:
        lines.append(f"<variable>{name}</variable>: {para}")
        lines.extend(f"    <value>{v}</value>" for v in values)
    return lines


DESCRIPTIONS: dict[str, list[str]] = {
    "stream file": [
        "Send the given file, allowing playback to be interrupted by the given digits, if any. "
        "Returns <literal>0</literal> if playback completes without a digit being pressed, or the "
        "ASCII numerical value of the digit if one was pressed, or <literal>-1</literal> on error "
        "or if the channel was disconnected. If musiconhold is playing before calling stream file "
        "it will be automatically stopped and will not be restarted after completion.",
        "It sets the following channel variables upon completion:",
        *_variables(("PLAYBACKSTATUS", "The status of the playback attempt as a text string.",
                     ("SUCCESS", "FAILED"))),
    ],
    "channel status": [
        "Returns the status of the specified <replaceable>channelname</replaceable>. If no channel "
        "name is given then returns the status of the current channel.",
        "Return values:",
        *(f"    <enum>{n}</enum> - {t}" for n, t in enumerate((
            "Channel is down and available.", "Channel is down, but reserved.",
            "Channel is off hook.", "Digits (or equivalent) have been dialed.",
            "Line is ringing.", "Remote end is ringing.", "Line is up.", "Line is busy."))),
    ],
    "control stream file": [
        "Send the given file, allowing playback to be controlled by the given digits, if any. Use "
        "double quotes for the digits if you wish none to be permitted. If offsetms is provided "
        "then the audio will seek to offsetms before play starts. Returns <literal>0</literal> if "
        "playback completes without a digit being pressed, or the ASCII numerical value of the "
        "digit if one was pressed, or <literal>-1</literal> on error or if the channel was "
        "disconnected. Returns the position where playback was terminated as endpos.",
        "It sets the following channel variables upon completion:",
        *_variables(
            ("CPLAYBACKSTATUS", "Contains the status of the attempt as a text string",
             ("SUCCESS", "USERSTOPPED", "REMOTESTOPPED", "ERROR")),
            ("CPLAYBACKOFFSET", "Contains the offset in ms into the file where playback was at "
             "when it stopped. <literal>-1</literal> is end of file.", ()),
            ("CPLAYBACKSTOPKEY", "If the playback is stopped by the user this variable contains "
             "the key that was pressed.", ())),
    ],
    "database del": [
        "Deletes an entry in the Asterisk database for a given <replaceable>family</replaceable> "
        "and <replaceable>key</replaceable>.",
        "Returns <literal>1</literal> if successful, <literal>0</literal> otherwise.",
    ],
    "database deltree": [
        "Deletes a <replaceable>family</replaceable> or specific <replaceable>keytree</replaceable> "
        "within a <replaceable>family</replaceable> in the Asterisk database.",
        "Returns <literal>1</literal> if successful, <literal>0</literal> otherwise.",
    ],
    "database get": [
        "Retrieves an entry in the Asterisk database for a given <replaceable>family</replaceable> "
        "and <replaceable>key</replaceable>.",
        "Returns <literal>0</literal> if <replaceable>key</replaceable> is not set. Returns "
        "<literal>1</literal> if <replaceable>key</replaceable> is set and returns the variable in "
        "parenthesis.",
        "Example return code: 200 result=1 (testvariable)",
    ],
    "database put": [
        "Adds or updates an entry in the Asterisk database for a given "
        "<replaceable>family</replaceable>, <replaceable>key</replaceable>, and "
        "<replaceable>value</replaceable>.",
        "Returns <literal>1</literal> if successful, <literal>0</literal> otherwise.",
    ],
    "exec": [
        "Executes <replaceable>application</replaceable> with given "
        "<replaceable>options</replaceable>.",
        "Returns whatever the <replaceable>application</replaceable> returns, or "
        "<literal>-2</literal> on failure to find <replaceable>application</replaceable>.",
        "<note>NOTE:</note> exec does not evaluate dialplan functions and variables unless it is "
        "explicitly enabled by setting the <variable>AGIEXECFULL</variable> variable to "
        "<literal>yes</literal>.",
    ],
    "get data": [
        "Stream the given <replaceable>file</replaceable>, and receive DTMF data.",
        "Returns the digits received from the channel at the other end.",
    ],
    "get full variable": [
        "Evaluates the given <replaceable>expression</replaceable> against the channel specified "
        "by <replaceable>channelname</replaceable>, or the current channel if "
        "<replaceable>channelname</replaceable> is not provided.",
        "Unlike GET VARIABLE, the <replaceable>expression</replaceable> is processed in a manner "
        "similar to dialplan evaluation, allowing complex and built-in variables to be accessed, "
        "e.g. <literal>The time is ${EPOCH}</literal>",
        "Returns <literal>0</literal> if no channel matching <replaceable>channelname</replaceable> "
        "exists, <literal>1</literal> otherwise.",
        "Example return code: 200 result=1 (The time is 1578493800)",
    ],
    "get option": ["Behaves similar to STREAM FILE but used with a timeout option."],
    "get variable": [
        "Returns <literal>0</literal> if <replaceable>variablename</replaceable> is not set. "
        "Returns <literal>1</literal> if <replaceable>variablename</replaceable> is set and "
        "returns the variable in parentheses.",
        "Example return code: 200 result=1 (testvariable)",
    ],
    "hangup": ["Hangs up the specified channel. If no channel name is given, hangs up the current "
               "channel"],
    "receive char": [
        "Receives a character of text on a channel. Most channels do not support the reception of "
        "text. Returns the decimal value of the character if one is received, or "
        "<literal>0</literal> if the channel does not support text reception. Returns "
        "<literal>-1</literal> only on error/hangup.",
    ],
    "receive text": [
        "Receives a string of text on a channel. Most channels do not support the reception of "
        "text. Returns <literal>-1</literal> for failure or <literal>1</literal> for success, and "
        "the string in parenthesis.",
    ],
    "record file": [
        "Record to a file until a given dtmf digit in the sequence is received. Returns "
        "<literal>-1</literal> on hangup or error.  The format will specify what kind of file will "
        "be recorded. The <replaceable>timeout</replaceable> is the maximum record time in "
        "milliseconds, or <literal>-1</literal> for no <replaceable>timeout</replaceable>. "
        "<replaceable>offset samples</replaceable> is optional, and, if provided, will seek to the "
        "offset without exceeding the end of the file. <replaceable>beep</replaceable> can take "
        "any value, and causes Asterisk to play a beep to the channel that is about to be "
        "recorded. <replaceable>silence</replaceable> is the number of seconds of silence allowed "
        "before the function returns despite the lack of dtmf digits or reaching "
        "<replaceable>timeout</replaceable>. <replaceable>silence</replaceable> value must be "
        "preceded by <literal>s=</literal> and is also optional.",
    ],
    "say alpha": ["Say a given character string, returning early if any of the given DTMF digits "
                  "are received on the channel. " + _SAY_TAIL],
    "say digits": ["Say a given digit string, returning early if any of the given DTMF digits are "
                   "received on the channel. " + _SAY_TAIL],
    "say number": ["Say a given number, returning early if any of the given DTMF digits are "
                   "received on the channel.  " + _SAY_TAIL],
    "say phonetic": [
        "Say a given character string with phonetics, returning early if any of the given DTMF "
        "digits are received on the channel. Returns <literal>0</literal> if playback completes "
        "without a digit pressed, the ASCII numerical value of the digit if one was pressed, or "
        "<literal>-1</literal> on error/hangup.",
    ],
    "say date": ["Say a given date, returning early if any of the given DTMF digits are received "
                 "on the channel. " + _SAY_TAIL],
    "say time": ["Say a given time, returning early if any of the given DTMF digits are received "
                 "on the channel. " + _SAY_TAIL],
    "say datetime": ["Say a given time, returning early if any of the given DTMF digits are "
                     "received on the channel. " + _SAY_TAIL],
    "send image": [
        "Sends the given image on a channel. Most channels do not support the transmission of "
        "images. Returns <literal>0</literal> if image is sent, or if the channel does not support "
        "image transmission.  Returns <literal>-1</literal> only on error/hangup. Image names "
        "should not include extensions.",
    ],
    "send text": [
        "Sends the given text on a channel. Most channels do not support the transmission of text. "
        "Returns <literal>0</literal> if text is sent, or if the channel does not support text "
        "transmission. Returns <literal>-1</literal> only on error/hangup.",
    ],
    "set autohangup": [
        "Cause the channel to automatically hangup at <replaceable>time</replaceable> seconds in "
        "the future. Of course it can be hungup before then as well. Setting to "
        "<literal>0</literal> will cause the autohangup feature to be disabled on this channel.",
    ],
    "set context": ["Sets the context for continuation upon exiting the application."],
    "set extension": ["Changes the extension for continuation upon exiting the application."],
    "set music": [
        "Enables/Disables the music on hold generator. If <replaceable>class</replaceable> is not "
        "specified, then the <literal>default</literal> music on hold class will be used. This "
        "generator will be stopped automatically when playing a file.",
        "Always returns <literal>0</literal>.",
    ],
    "set priority": ["Changes the priority for continuation upon exiting the application. The "
                     "priority must be a valid priority or label."],
    "set variable": ["Sets a variable to the current channel."],
    "tdd mode": ["Enable/Disable TDD transmission/reception on a channel. Returns "
                 "<literal>1</literal> if successful, or <literal>0</literal> if channel is not "
                 "TDD-capable."],
    "verbose": ["Sends <replaceable>message</replaceable> to the console via verbose message "
                "system. <replaceable>level</replaceable> is the verbose level (1-4). Always "
                "returns <literal>1</literal>"],
    "wait for digit": [
        "Waits up to <replaceable>timeout</replaceable> milliseconds for channel to receive a DTMF "
        "digit. Returns <literal>-1</literal> on channel failure, <literal>0</literal> if no digit "
        "is received in the timeout, or the numerical value of the ascii of the digit if one is "
        "received. Use <literal>-1</literal> for the <replaceable>timeout</replaceable> value if "
        "you desire the call to block indefinitely.",
    ],
    "speech set": ["Set an engine-specific setting."],
    "speech load grammar": ["Loads the specified grammar as the specified name."],
    "speech unload grammar": ["Unloads the specified grammar."],
    "speech activate grammar": ["Activates the specified grammar on the speech object."],
    "speech deactivate grammar": ["Deactivates the specified grammar on the speech object."],
    "speech recognize": ["Plays back given <replaceable>prompt</replaceable> while listening for "
                         "speech and dtmf."],
}


def usage_reply(command: str) -> str:
    """The complete multi-line 520 reply for a known command (lower-case words)."""
    body = DESCRIPTIONS.get(command)
    if not body:
        return "520 Invalid command syntax.  Proper usage not available.\n"
    return HEAD + "\n".join(body) + "\n" + TAIL
