#!/usr/bin/env node
// Compiles the Solidity sources under tests/contracts/ with the pinned npm `solc` and writes
// one artifact per contract (ABI + bytecode) to tests/contracts/artifacts/.
//   node scripts/compile_contracts.js          write the artifacts
//   node scripts/compile_contracts.js --check  exit 1 when the committed artifacts differ
"use strict";

const fs = require("fs");
const path = require("path");
const solc = require("solc");

const ROOT = path.resolve(__dirname, "..");
const SOURCES = path.join(ROOT, "tests", "contracts");
const ARTIFACTS = path.join(SOURCES, "artifacts");
// Fixed settings, so the same sources always give the same bytes.
const SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: "cancun",
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
};

function compile() {
  const sources = {};
  for (const file of fs.readdirSync(SOURCES).filter((f) => f.endsWith(".sol")).sort()) {
    sources[file] = { content: fs.readFileSync(path.join(SOURCES, file), "utf8") };
  }
  const input = { language: "Solidity", sources, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  if (errors.length) {
    throw new Error(errors.map((e) => e.formattedMessage).join("\n"));
  }
  const artifacts = {};
  for (const [file, contracts] of Object.entries(output.contracts)) {
    for (const [name, contract] of Object.entries(contracts)) {
      artifacts[name] = {
        contractName: name,
        sourceName: file,
        compiler: `solc ${solc.version()}`,
        abi: contract.abi,
        bytecode: "0x" + contract.evm.bytecode.object,
      };
    }
  }
  return artifacts;
}

function render(artifact) {
  return JSON.stringify(artifact, null, 2) + "\n";
}

function main() {
  const check = process.argv.includes("--check");
  const artifacts = compile();
  let stale = 0;
  if (!check) fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const [name, artifact] of Object.entries(artifacts)) {
    const target = path.join(ARTIFACTS, `${name}.json`);
    const text = render(artifact);
    if (check) {
      const current = fs.existsSync(target) ? fs.readFileSync(target, "utf8") : null;
      if (current !== text) {
        console.error(`stale: ${path.relative(ROOT, target)} does not match its source`);
        stale += 1;
      }
    } else {
      fs.writeFileSync(target, text);
      console.log(`wrote ${path.relative(ROOT, target)}`);
    }
  }
  if (check) {
    const extra = fs.existsSync(ARTIFACTS)
      ? fs.readdirSync(ARTIFACTS).filter((f) => !(f.replace(/\.json$/, "") in artifacts))
      : [];
    for (const file of extra) console.error(`stale: artifacts/${file} has no source`);
    if (stale || extra.length) process.exit(1);
    console.log(`${Object.keys(artifacts).length} artifacts match their sources`);
  }
}

main();
