// O1: a partition function (and a piscina task) that does nothing.
export default async function noop() {}
