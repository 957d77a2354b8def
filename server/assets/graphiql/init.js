// Mounts GraphiQL against this server's /graphql.
const defaultQuery = `# Put a token in the Headers tab below (./dev token NAME makes one):
#   {"Authorization": "Bearer <token>"}
# then run this with Ctrl-Enter.
query OpenTasks {
  tasks(first: 10) {
    edges { node { id title priority dueAt tags version } }
    pageInfo { hasNextPage endCursor }
  }
}
`;
const fetcher = GraphiQL.createFetcher({ url: '/graphql' });
const root = ReactDOM.createRoot(document.getElementById('graphiql'));
root.render(React.createElement(GraphiQL, { fetcher, defaultQuery, defaultEditorToolsVisibility: true }));
