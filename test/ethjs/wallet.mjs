// ethers.js 6 Wallet (a local key, no keyward) as the reference signer. Run
// by the Go tests in chains/ethereum:
//
//   node wallet.mjs signTypedData <hex private key> <typed data JSON>
//       Wallet.signTypedData(domain, types without EIP712Domain, message),
//       checked with verifyTypedData
//
// Prints one JSON object on stdout; exits 1 with a message on any mismatch.
import { Wallet, TypedDataEncoder, verifyTypedData } from "ethers";

function check(cond, what) {
	if (!cond) {
		console.error("FAIL: " + what);
		process.exit(1);
	}
}

async function signTypedData(key, json) {
	const wallet = new Wallet(key);
	const td = JSON.parse(json);
	const types = Object.assign({}, td.types);
	delete types.EIP712Domain;
	const signature = await wallet.signTypedData(td.domain, types, td.message);
	check(verifyTypedData(td.domain, types, td.message, signature) === wallet.address, "verifyTypedData");
	return { address: wallet.address, digest: TypedDataEncoder.hash(td.domain, types, td.message), signature };
}

const [mode, ...args] = process.argv.slice(2);
const run = { signTypedData }[mode];
check(run !== undefined, "mode must be signTypedData");
try {
	console.log(JSON.stringify(await run(...args)));
	process.exit(0);
} catch (e) {
	console.error("FAIL: " + (e?.stack ?? e));
	process.exit(1);
}
