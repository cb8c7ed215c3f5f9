// Parses an AsyncAPI document (stdin) with @asyncapi/parser; prints its error diagnostics and
// each operation's action and channel address as JSON. Run with NODE_PATH naming node_modules.
const { Parser } = require("@asyncapi/parser");

async function main() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const { document, diagnostics } = await new Parser().parse(Buffer.concat(chunks).toString());
  const errors = diagnostics.filter((d) => d.severity === 0).map((d) => `${d.path.join(".")}: ${d.message}`);
  const operations = document
    ? document.operations().all().map((op) => ({
        id: op.id(),
        action: op.action(),
        addresses: op.channels().all().map((channel) => channel.address()),
      }))
    : [];
  process.stdout.write(JSON.stringify({ errors, operations }));
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error));
  process.exit(2);
});
