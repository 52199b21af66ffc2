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

if noise then
  empty
else
  activity,
  (select(.eventType == "cell_executed" and .hasError == true) | alert)
  # A help request to the class's chat, through notify's webhooks: add
  # these lines (with the comma) to send one.
  # , (select(.eventType == "help")
  #    | { topic: "hook:chat", classId, studentId, eventId, receivedAt,
  #        text: "\(.userName // .studentId) asks for help with \(.notebookPath // "a notebook") in \(.classId)" })
end

# Variables come from the command line and the environment, for instance to
# route only some classes, named at start:
#   labpulse route --arg classes CS101,CS102 ...
# with the program above wrapped as
#   select(.classId as $c | $classes | split(",") | index([$c])) | ...
# or to mute a class named in the environment:
#   select(.classId != $ENV.LABPULSE_MUTED_CLASS) | ...
# --argjson NAME JSON gives a JSON value instead of a string.
