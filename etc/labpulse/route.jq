# route.jq: the rules of labpulse-route(1), what each event becomes.
#
# A jq program, run once per event with the event as its input (.); each
# value it yields is one message, an object with a string "topic". No value
# drops the event from routing (batch-commit stores it all the same);
# several fan out. A message whose topic starts with "hook:" goes to the
# hooks stream (chat webhooks), every other one to the routed stream
# (dashboards, which subscribe to a class as the topic "class:ID").
# route adds nothing to a message: what a dashboard needs, the rules put in.
#
# Check a change before reloading (systemctl reload labpulse-route):
#   labpulse route --check /etc/labpulse/route.jq
#   labpulse route --test --rules ./route.jq <events.ndjson

# Events that are not worth a message: marked as noise by the client, or a
# code cell run with nothing in it.
def noise:
  .metadata.noise == true
  or (.eventType == "cell_executed"
      and (.code | type) == "string" and (.code | test("^\\s*$")));

# The class room's activity feed: one message per event. Fields the event
# lacks are null, so that every activity message has the same keys. ingest
# always sets classId; NDJSON from elsewhere without one goes to class:null.
def activity:
  { topic: "class:\(.classId)", kind: "activity",
    eventId, eventType, eventTime, receivedAt, studentId, userName,
    notebookPath, cellIndex, executionCount, hasError, errorMessage };

# A cell that failed: an alert for the instructors of the class, beside the
# activity message.
def alert:
  { topic: "class:\(.classId)", kind: "alert",
    eventId, eventTime, receivedAt, studentId, userName, notebookPath,
    cellIndex, errorMessage };

# A field for a sentence: its text, or d when it is missing or empty.
def or_else(d): if type == "string" and . != "" then . else d end;

# A help request (an event of type "help"), for the class's chat: the
# destination "chat" of the hooks file, which notify delivers to (a
# Telegram chat or a webhook), with a text that reads as a sentence.
def help_request:
  { topic: "hook:chat", kind: "help",
    eventId, eventTime, receivedAt, classId, studentId, userName,
    notebookPath,
    text: "\((.userName | or_else(null)) // (.studentId | or_else("a student"))) asks for help with \(.notebookPath | or_else("a notebook")) in \(.classId | or_else("a class"))" };

if noise then
  empty
else
  activity,
  (select(.eventType == "cell_executed" and .hasError == true) | alert),
  # The help request hook is on when the hooks file (route --hook-names,
  # else $LABPULSE_HOOKS) names a destination "chat"; $hooks is the array
  # of its names, [] without a hooks file.
  (select(.eventType == "help" and any($hooks[]; . == "chat"))
   | help_request)
end

# Variables come from the command line and the environment, for instance to
# route only some classes, named at start:
#   labpulse route --arg classes CS101,CS102 ...
# with the program above wrapped as
#   select(.classId as $c | $classes | split(",") | index([$c])) | ...
# or to mute a class named in the environment:
#   select(.classId != $ENV.LABPULSE_MUTED_CLASS) | ...
# --argjson NAME JSON gives a JSON value instead of a string.
